#!/usr/bin/env bash
# The streamsplit demo.
#
#   ./e2e/demo.sh             standalone: a fresh local broker, examples/records.jsonl routed with
#                             the rules in examples/rules/, where every record went, an exception
#   ./e2e/demo.sh kubernetes  the Kubernetes path: kubectl apply the rules, the operator creates
#                             topics and publishes the bundle, a router hot-swaps it and routes;
#                             then a broken edit is rejected without disturbing routing. Needs the
#                             e2e control plane (built from source on first use, ~12 min)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE="${1:-standalone}"

export STREAMSPLIT_KAFKA_PORT="${STREAMSPLIT_DEMO_KAFKA_PORT:-19093}"
export STREAMSPLIT_TEST_BROKERS="127.0.0.1:$STREAMSPLIT_KAFKA_PORT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting a fresh Kafka-protocol broker on $STREAMSPLIT_TEST_BROKERS"
e2e/kafka/down.sh
e2e/kafka/up.sh >/dev/null

say "Building streamsplit"
cargo build --quiet --bin streamsplit-router --bin streamsplit-kafka --bin streamsplit-operator --bin streamsplit-project
ROUTER=target/debug/streamsplit-router
KAFKA=target/debug/streamsplit-kafka
# The rules' fixed target topics (on Kubernetes, the operator creates them), then the one topic of
# the templated rule orders-by-event that exists (nobody creates topics for templates: its refund
# record goes to the exception topic), then the exception topic.
RULE_TOPICS=(tracking.home-page tracking.checkout tracking.mobile tracking.slow-pages tracking.vip-clicks tracking.tenant-acme tracking.sandbox tracking.checkout-analytics tracking.searches-by-user tracking.latency-slow tracking.latency-fast)
TOPICS=("${RULE_TOPICS[@]}" tracking.orders-purchase tracking.exceptions)
PIDS=()
trap 'for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

show_results() {
  say "Records per topic"
  $KAFKA count tracking.events "${TOPICS[@]}"
  say "The exception topic: original bytes plus headers saying why"
  $KAFKA show tracking.exceptions
}

if [ "$MODE" = kubernetes ]; then
  say "Starting the e2e Kubernetes control plane (kube-apiserver on 127.0.0.1)"
  eval "$(e2e/cluster/up.sh)"
  export KUBECONFIG
  kubectl apply -f crds/ >/dev/null
  kubectl wait --for condition=established crd/splitrules.streamsplit.io crd/routerpools.streamsplit.io --timeout 60s >/dev/null
  for ns in streamsplit-demo tracking; do kubectl delete namespace "$ns" --wait=true --timeout 60s >/dev/null 2>&1 || true; kubectl create namespace "$ns" >/dev/null; done
  $KAFKA create tracking.events:3 tracking.exceptions tracking.orders-purchase

  say "The platform team's RouterPool: what the pool consumes, and who may write which topics"
  kubectl apply -n streamsplit-demo -f examples/routerpool.yaml

  say "Starting the operator (bundles go to namespace streamsplit-demo)"
  target/debug/streamsplit-operator --brokers "$STREAMSPLIT_TEST_BROKERS" --namespace streamsplit-demo \
    --default-partitions 3 --default-replication-factor 1 --metrics-addr 127.0.0.1:19180 2>demo-operator.log &
  PIDS+=($!)

  say "kubectl apply -f examples/rules/"
  kubectl apply -f examples/rules/
  kubectl wait --for condition=Ready splitrule --all -n tracking --timeout 60s >/dev/null
  kubectl get splitrules -n tracking
  echo "bundle: $(kubectl get configmap streamsplit-rules-default -n streamsplit-demo -o jsonpath='{.metadata.annotations.streamsplit\.io/bundle-version}')"
  $KAFKA count "${RULE_TOPICS[@]}" | sed 's/^/  topic exists: /'

  say "A router mounts the bundle (projected like the kubelet would) and routes"
  target/debug/streamsplit-project streamsplit-demo streamsplit-rules-default demo-bundle &
  PIDS+=($!)
  $ROUTER run --brokers "$STREAMSPLIT_TEST_BROKERS" --source-topic tracking.events --group demo-k8s \
    --exception-topic tracking.exceptions --config-dir demo-bundle --state-dir demo-state \
    --metrics-addr 127.0.0.1:19190 --consumer-property session.timeout.ms=6000 2>demo-router.log &
  PIDS+=($!)
  $KAFKA produce tracking.events examples/records.jsonl
  $KAFKA wait-committed demo-k8s tracking.events 60
  show_results

  say "A typo in a live rule: reported on its status, never published, routing unaffected"
  kubectl patch splitrule home-page -n tracking --type merge -p '{"spec":{"condition":"record.id > 300 &&& record.page"}}'
  for _ in $(seq 1 50); do
    [ "$(kubectl get splitrule home-page -n tracking -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}')" = CompileError ] && break
    sleep 0.2
  done
  kubectl get splitrules -n tracking
  kubectl get splitrule home-page -n tracking -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}'; echo

  say "A rule that would copy into the pool's own source topic (a loop) is refused by policy"
  printf 'apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata: {name: loop, namespace: tracking}\nspec: {condition: "true", targetTopic: tracking.events}\n' | kubectl apply -f -
  kubectl wait --for condition=Valid=false splitrule/loop -n tracking --timeout 30s >/dev/null || true
  kubectl get splitrule loop -n tracking -o jsonpath='{.status.conditions[?(@.type=="Valid")].message}'; echo
  kubectl get routerpools -n streamsplit-demo
  say "Done. Logs: demo-operator.log, demo-router.log"
  exit 0
fi

say "Checking the example rules (compile + their own tests)"
$ROUTER check examples/rules

say "What eval predicts for each sample record"
$ROUTER eval examples/rules --input examples/records.jsonl

say "Creating topics and producing $(wc -l < examples/records.jsonl) sample records to tracking.events"
$KAFKA create tracking.events:3 "${TOPICS[@]}"
$KAFKA produce tracking.events examples/records.jsonl

say "Routing with streamsplit-router run"
$ROUTER run --brokers "$STREAMSPLIT_TEST_BROKERS" --source-topic tracking.events --group demo \
  --exception-topic tracking.exceptions --rules examples/rules --metrics-addr 127.0.0.1:19190 \
  --consumer-property session.timeout.ms=6000 2>demo-router.log &
ROUTER_PID=$!
PIDS+=($ROUTER_PID)
$KAFKA wait-committed demo tracking.events 60
show_results

say "A few router metrics (http://127.0.0.1:19190/metrics)"
python3 - <<'PY'
import urllib.request
text = urllib.request.urlopen("http://127.0.0.1:19190/metrics").read().decode()
for line in text.splitlines():
    if line.startswith(("streamsplit_records_consumed_total", "streamsplit_records_routed_total", "streamsplit_exceptions_total", "streamsplit_rule_matches_total")):
        print("  " + line)
PY

kill -TERM $ROUTER_PID
wait $ROUTER_PID && say "Router stopped cleanly (SIGTERM: flushed, committed, exit 0). Its log: demo-router.log"
