#!/usr/bin/env bash
# The full test suite. Starts (installing if needed) everything the tests run against, then
# checks formatting and lints and runs every test of the workspace.
#
#   ./e2e/test.sh                       # local brokers: noida-db on 127.0.0.1:19092, nisshi on :19094
#   STREAMSPLIT_TEST_BROKERS=host:9092 ./e2e/test.sh   # your own Kafka cluster instead
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${STREAMSPLIT_TEST_BROKERS:-}" ]; then
  eval "$(e2e/kafka/up.sh)"
fi
export STREAMSPLIT_TEST_BROKERS
echo "test.sh: Kafka at $STREAMSPLIT_TEST_BROKERS" >&2
# A real kube-apiserver (built once from Debian's source package and cached; ~12 min cold).
eval "$(e2e/cluster/up.sh)"
echo "test.sh: Kubernetes API at $(grep server: "$KUBECONFIG" | awk '{print $2}')" >&2
# The second, independent broker for the checker scenarios: nisshi, built once from crates.io
# and cached (~16 min cold); STREAMSPLIT_TEST_NISSHI=host:port uses a running one instead.
if [ -z "${STREAMSPLIT_TEST_NISSHI:-}" ]; then
  eval "$(STREAMSPLIT_KAFKA_KIND=nisshi e2e/kafka/up.sh)"
fi
export STREAMSPLIT_TEST_NISSHI
echo "test.sh: second broker (nisshi) at $STREAMSPLIT_TEST_NISSHI" >&2
# A broker requiring TLS and SASL/SCRAM (nisshi again, with a test CA and a random password).
if [ -z "${STREAMSPLIT_TEST_SECURE_KAFKA:-}" ]; then
  eval "$(e2e/kafka/secure-up.sh)"
fi
export STREAMSPLIT_TEST_SECURE_KAFKA STREAMSPLIT_TEST_SECURE_KAFKA_DIR
echo "test.sh: TLS + SASL broker at $STREAMSPLIT_TEST_SECURE_KAFKA" >&2

cargo fmt --all -- --check
cargo build --workspace --locked
# Chart, alerts and dashboard with the real tools (helm, kubernetes-validate, promtool), and the
# operator running with exactly the chart's RBAC.
e2e/chart-checks.sh

cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --failure-output final
else
  cargo test --workspace --locked --no-fail-fast
fi
