#!/usr/bin/env bash
# Checks of the Helm chart and the alerts with the real tools (installed by e2e/tools.sh):
# helm lint/template (default and all optional features), the chart's CRD equals crds/,
# kubernetes-validate --strict, apply to the e2e kube-apiserver, bad values rejected by the
# schema, promtool check + unit tests of every alert. Needs KUBECONFIG (e2e/cluster/up.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(e2e/tools.sh)"
CHART=charts/streamsplit
OUT=target/chart-checks
rm -rf "$OUT" && mkdir -p "$OUT"
step() { echo "chart-checks: $*" >&2; }

step "the chart's CRDs are crds/*.yaml"
for crd in crds/*.yaml; do cmp "$crd" "$CHART/crds/$(basename "$crd")"; done
[ "$(ls "$CHART/crds" | wc -l)" = "$(ls crds | wc -l)" ]

for variant in default all-features; do
  args=()
  [ "$variant" = all-features ] && args=(-f "$CHART/ci/all-features-values.yaml")
  step "helm lint ($variant)"
  helm lint --strict "$CHART" "${args[@]}" >&2
  step "helm template ($variant)"
  helm template streamsplit "$CHART" --namespace streamsplit-system --include-crds "${args[@]}" > "$OUT/$variant.yaml"
  # Monitoring resources are custom resources of the Prometheus Operator: no built-in schema.
  streamsplit-python - "$OUT/$variant.yaml" "$OUT/$variant-core.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
# RouterPools are checked against their CRD by the apiserver in the apply step below.
core = [d for d in docs if not d["apiVersion"].startswith(("monitoring.coreos.com/", "streamsplit.io/"))]
yaml.safe_dump_all(core, open(sys.argv[2], "w"), sort_keys=False)
print(f"{len(docs)} documents, {len(core)} with built-in schemas", file=sys.stderr)
PY
  for version in 1.25.0 1.37.0; do
    step "kubernetes-validate --strict against $version ($variant)"
    kubernetes-validate --strict --quiet -k "$version" "$OUT/$variant-core.yaml" >&2
  done
done

step "Kafka credentials reach the pods as mounted files, never as arguments or environment"
streamsplit-python - "$OUT/all-features.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment"]
assert docs, "no Deployments rendered"
for d in docs:
    pod = d["spec"]["template"]["spec"]
    for c in pod["containers"]:
        args = " ".join(c.get("args", []))
        name = f'{d["metadata"]["name"]}/{c["name"]}'
        assert "--kafka-property-file=sasl.password=/etc/streamsplit/kafka-sasl/" in args, name
        assert "sasl.password=$(" not in args and "--kafka-property=sasl.password" not in args, name
        assert not any("secretKeyRef" in str(e) for e in c.get("env", [])), f"{name}: a secret in env"
        assert any(m["mountPath"] == "/etc/streamsplit/kafka-sasl" for m in c["volumeMounts"]), name
    assert any(v.get("secret", {}).get("secretName") == "kafka-user" for v in pod["volumes"]), d["metadata"]["name"]
print(f"{len(docs)} Deployments read SASL credentials from the mounted Secret", file=sys.stderr)
PY

step "bad values are rejected by values.schema.json"
if helm template streamsplit "$CHART" --set 'routers[0].name=Not_A_Label' > /dev/null 2> "$OUT/bad-values.log"; then
  echo "chart-checks: an invalid pool name was accepted" >&2; exit 1
fi
grep -q "routers" "$OUT/bad-values.log"

step "apply to the e2e kube-apiserver (CRDs, RBAC, Deployments, Services)"
ns="chart-check-$$"
kubectl create namespace "$ns" >/dev/null
kubectl create namespace tracking --dry-run=client -o yaml | kubectl apply -f - >/dev/null
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
for variant in default all-features; do
  # CRDs first (helm installs crds/ before the templates), then everything but monitoring.
  streamsplit-python - "$OUT/$variant.yaml" "$OUT/$variant-crds.yaml" "$OUT/$variant-apply.yaml" "$ns" <<'PY'
import sys, yaml
# The release namespace, wherever it appears (metadata, RoleBinding subjects, ...).
text = open(sys.argv[1]).read().replace("namespace: streamsplit-system", f"namespace: {sys.argv[4]}")
docs = [d for d in yaml.safe_load_all(text) if d]
docs = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
yaml.safe_dump_all(crds, open(sys.argv[2], "w"), sort_keys=False)
yaml.safe_dump_all([d for d in docs if d not in crds], open(sys.argv[3], "w"), sort_keys=False)
PY
  kubectl apply --server-side --field-manager chart-checks --force-conflicts -f "$OUT/$variant-crds.yaml" >&2
  kubectl wait --for condition=established crd/splitrules.streamsplit.io crd/routerpools.streamsplit.io --timeout 60s >&2
  kubectl apply --server-side --field-manager chart-checks --force-conflicts -f "$OUT/$variant-apply.yaml" >&2
done
# Capture first: `| grep -q` would close the pipe early and kill kubectl with SIGPIPE (exit 141).
deployments="$(kubectl get deployment -n "$ns" -o name)"
grep -q router-default <<<"$deployments"

if [ -n "${STREAMSPLIT_TEST_BROKERS:-}" ] && [ -x target/debug/streamsplit-operator ] && [ -x target/debug/streamsplit-router ]; then
  step "the operator works with exactly the chart's RBAC (impersonating its ServiceAccount)"
  streamsplit-python - "$KUBECONFIG" "$OUT/operator-kubeconfig" "system:serviceaccount:$ns:streamsplit-operator" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for user in config["users"]:
    user["user"]["as"] = sys.argv[3]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
  rules_ns="$ns-rules"
  kubectl create namespace "$rules_ns" >/dev/null
  trap 'kubectl delete namespace "$ns" "$rules_ns" --wait=false >/dev/null 2>&1 || true; kill "${op_pid:-0}" 2>/dev/null || true' EXIT
  KUBECONFIG="$OUT/operator-kubeconfig" target/debug/streamsplit-operator --brokers "$STREAMSPLIT_TEST_BROKERS" \
    --namespace "$ns" --watch-namespace "$rules_ns" --default-partitions 1 --default-replication-factor 1 --metrics-addr 127.0.0.1:0 \
    > "$OUT/operator.log" 2>&1 &
  op_pid=$!
  cat <<RULE | kubectl apply -n "$rules_ns" -f - >&2
apiVersion: streamsplit.io/v1alpha1
kind: SplitRule
metadata: {name: rbac-check}
spec: {condition: "true", targetTopic: $rules_ns.rbac-check}
RULE
  if ! kubectl wait --for condition=Ready "splitrule/rbac-check" -n "$rules_ns" --timeout 60s >&2; then
    tail -30 "$OUT/operator.log" >&2
    exit 1
  fi
  kubectl get configmap streamsplit-rules-default -n "$ns" -o name >&2

  step "a router reports its roll-out with exactly the chart's RBAC, and can do nothing else"
  router_sa="system:serviceaccount:$ns:streamsplit-router"
  streamsplit-python - "$KUBECONFIG" "$OUT/router-kubeconfig" "$router_sa" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for user in config["users"]:
    user["user"]["as"] = sys.argv[3]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
  mkdir -p "$OUT/router-bundle"
  kubectl get configmap streamsplit-rules-default -n "$ns" -o jsonpath='{.data.bundle\.json}' > "$OUT/router-bundle/bundle.json"
  source_topic="$(kubectl get routerpool default -n "$ns" -o jsonpath='{.spec.sourceTopics[0]}')"
  exception_topic="$(kubectl get routerpool default -n "$ns" -o jsonpath='{.spec.exceptionTopic}')"
  KUBECONFIG="$OUT/router-kubeconfig" target/debug/streamsplit-router run --brokers "$STREAMSPLIT_TEST_BROKERS" \
    --source-topic "$source_topic" --group "chart-check-$$" --exception-topic "$exception_topic" \
    --config-dir "$OUT/router-bundle" --metrics-addr 127.0.0.1:0 --rollout-lease-namespace "$ns" \
    --pool default --instance-id chart-check-router --rollout-lease-interval 1s \
    > "$OUT/router.log" 2>&1 &
  router_pid=$!
  trap 'kubectl delete namespace "$ns" "$rules_ns" --wait=false >/dev/null 2>&1 || true; kill "${op_pid:-0}" "${router_pid:-0}" 2>/dev/null || true' EXIT
  if ! kubectl wait --for condition=RolledOut "splitrule/rbac-check" -n "$rules_ns" --timeout 60s >&2; then
    tail -30 "$OUT/router.log" "$OUT/operator.log" >&2
    exit 1
  fi
  kubectl get splitrule rbac-check -n "$rules_ns" >&2
  for denied in "list leases" "watch leases" "get configmaps" "get secrets" "list splitrules" "get routerpools"; do
    # shellcheck disable=SC2086
    if [ "$(kubectl auth can-i $denied -n "$ns" --as "$router_sa" 2>/dev/null || true)" = "yes" ]; then
      echo "chart-checks: the router's ServiceAccount may $denied" >&2; exit 1
    fi
  done
  for log in operator router; do
    if grep -qi "forbidden" "$OUT/$log.log"; then
      echo "chart-checks: the $log hit RBAC denials:" >&2; grep -i -m5 forbidden "$OUT/$log.log" >&2; exit 1
    fi
  done
  kill "$op_pid" "$router_pid"
fi

step "namespace users get SplitRules through the built-in edit and view roles (impersonated)"
team_a="$ns-team-a" team_b="$ns-team-b"
kubectl create namespace "$team_a" >/dev/null
kubectl create namespace "$team_b" >/dev/null
trap 'kubectl delete namespace "$ns" "${rules_ns:-$ns}" "$team_a" "$team_b" --wait=false >/dev/null 2>&1 || true; kill "${op_pid:-0}" 2>/dev/null || true' EXIT
kubectl create rolebinding alice-edit --clusterrole edit --user alice -n "$team_a" >/dev/null
kubectl create rolebinding bob-view --clusterrole view --user bob -n "$team_a" >/dev/null
# The aggregation controller adds the chart's rules to edit/view asynchronously: poll.
can() { kubectl auth can-i "$@" 2>/dev/null || true; }
for _ in $(seq 1 100); do
  [ "$(can --as alice create splitrules.streamsplit.io -n "$team_a")" = yes ] \
    && [ "$(can --as bob list splitrules.streamsplit.io -n "$team_a")" = yes ] && break
  sleep 0.3
done
rule() { printf 'apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata: {name: %s}\nspec: {condition: "true", targetTopic: %s.t}\n' "$1" "$2"; }
expect_denied() {
  local what="$1"; shift
  if "$@" > "$OUT/denied.log" 2>&1; then echo "chart-checks: $what was allowed" >&2; exit 1; fi
  grep -i forbidden "$OUT/denied.log" >/dev/null || { echo "chart-checks: $what failed without a Forbidden:" >&2; cat "$OUT/denied.log" >&2; exit 1; }
}
rule mine "$team_a" | kubectl --as alice apply -n "$team_a" -f - >&2
kubectl --as alice get splitrules -n "$team_a" -o name | grep -x splitrule.streamsplit.io/mine >/dev/null
kubectl --as alice delete splitrule mine -n "$team_a" >&2
rule theirs "$team_b" | kubectl apply -n "$team_b" -f - >/dev/null
expect_denied "an editor of $team_a creating a SplitRule in $team_b" \
  kubectl --as alice apply -n "$team_b" -f - <<<"$(rule mine "$team_b")"
expect_denied "an editor of $team_a reading $team_b's SplitRules" kubectl --as alice get splitrules -n "$team_b"
expect_denied "an editor of $team_a deleting $team_b's SplitRule" kubectl --as alice delete splitrule theirs -n "$team_b"
expect_denied "an editor creating a RouterPool" kubectl --as alice apply -n "$team_a" -f - <<'POOL'
apiVersion: streamsplit.io/v1alpha1
kind: RouterPool
metadata: {name: sneaky}
spec: {sourceTopics: [x], exceptionTopic: y, tenants: [{namespace: "*", targetTopics: ["*"]}]}
POOL
expect_denied "an editor changing the platform's RouterPool" \
  kubectl --as alice patch routerpool default -n "$ns" --type merge -p '{"spec":{"allowAdoptedTopicChanges":true}}'
expect_denied "a viewer creating a SplitRule" kubectl --as bob apply -n "$team_a" -f - <<<"$(rule viewer "$team_a")"
kubectl --as bob get splitrules -n "$team_a" >/dev/null

step "promtool check rules + unit tests of every alert"
streamsplit-python - "$OUT/all-features.yaml" "$OUT/rules.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
rule = next(d for d in docs if d["kind"] == "PrometheusRule")
yaml.safe_dump(rule["spec"], open(sys.argv[2], "w"), sort_keys=False)
PY
promtool check rules "$OUT/rules.yaml" >&2
streamsplit-python - "$OUT/rules.yaml" docs/runbook.md <<'PY'
import sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]]
runbook = open(sys.argv[2]).read()
missing = [r["alert"] for r in rules if f"## {r['alert']}\n" not in runbook]
assert not missing, f"alerts without a runbook section: {missing}"
assert all(r["annotations"]["runbook_url"].endswith("#" + r["alert"].lower()) for r in rules)
print(f"{len(rules)} alerts, each with a runbook section", file=sys.stderr)
PY
cp e2e/monitoring/alerts_test.yaml "$OUT/"
promtool test rules "$OUT/alerts_test.yaml" >&2
step "all chart checks passed"
