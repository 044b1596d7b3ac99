#!/usr/bin/env bash
# The streamsplit demo: starts a fresh local broker, routes examples/records.jsonl with the
# rules in examples/rules/ and shows where every record went, including an exception.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export STREAMSPLIT_KAFKA_PORT="${STREAMSPLIT_DEMO_KAFKA_PORT:-19093}"
export STREAMSPLIT_TEST_BROKERS="127.0.0.1:$STREAMSPLIT_KAFKA_PORT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting a fresh Kafka-protocol broker on $STREAMSPLIT_TEST_BROKERS"
e2e/kafka/down.sh
e2e/kafka/up.sh >/dev/null

say "Building streamsplit"
cargo build --quiet --bin streamsplit-router --bin streamsplit-kafka
ROUTER=target/debug/streamsplit-router
KAFKA=target/debug/streamsplit-kafka

say "Checking the example rules (compile + their own tests)"
$ROUTER check examples/rules

say "What eval predicts for each sample record"
$ROUTER eval examples/rules --input examples/records.jsonl

TOPICS=(tracking.home-page tracking.checkout tracking.mobile tracking.slow-pages tracking.exceptions)
say "Creating topics and producing $(wc -l < examples/records.jsonl) sample records to tracking.events"
$KAFKA create tracking.events:3 "${TOPICS[@]}"
$KAFKA produce tracking.events examples/records.jsonl

say "Routing with streamsplit-router run"
$ROUTER run --brokers "$STREAMSPLIT_TEST_BROKERS" --source-topic tracking.events --group demo \
  --exception-topic tracking.exceptions --rules examples/rules --metrics-addr 127.0.0.1:19190 \
  --consumer-property session.timeout.ms=6000 2>demo-router.log &
ROUTER_PID=$!
trap 'kill $ROUTER_PID 2>/dev/null || true' EXIT
$KAFKA wait-committed demo tracking.events 60

say "Records per topic"
$KAFKA count tracking.events "${TOPICS[@]}"

say "The exception topic: original bytes plus headers saying why"
$KAFKA show tracking.exceptions

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
