#!/usr/bin/env bash
# Starts a broker that requires TLS and SASL/SCRAM-SHA-512 on 127.0.0.1, for the tests of
# streamsplit's Kafka security settings: nisshi (build-nisshi.sh) with a certificate from a
# test CA made here, and one user whose password is random per start.
#
#   eval "$(e2e/kafka/secure-up.sh)"   # exports STREAMSPLIT_TEST_SECURE_KAFKA (host:port) and
#                                      # STREAMSPLIT_TEST_SECURE_KAFKA_DIR, which holds ca.pem,
#                                      # wrong-ca.pem (another CA), sasl-username, sasl-password
#
# nisshi keeps SCRAM users in SQLite storage, and its `user create` speaks plaintext only: the
# user is created on a plaintext start, then the broker restarts on the same storage with TLS
# and authentication. Idempotent: a broker already answering on the port is reused.
set -euo pipefail
PORT="${STREAMSPLIT_SECURE_KAFKA_PORT:-19095}"
STATE="${STREAMSPLIT_STATE:-${TMPDIR:-/tmp}/streamsplit-e2e}/kafka-$PORT"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "kafka/secure-up.sh: $*" >&2; }
announce() {
  echo "export STREAMSPLIT_TEST_SECURE_KAFKA=127.0.0.1:$PORT"
  echo "export STREAMSPLIT_TEST_SECURE_KAFKA_DIR=$STATE"
}

if [ -f "$STATE/ca.pem" ] && python3 "$HERE/ping.py" 127.0.0.1 "$PORT" "$STATE/ca.pem" 2>/dev/null; then
  log "secure broker already answering on 127.0.0.1:$PORT"
  announce
  exit 0
fi
NISSHI="$("$HERE/build-nisshi.sh")"
rm -rf "$STATE" && mkdir -p "$STATE"
cd "$STATE"

log "creating a test CA and the broker's certificate in $STATE"
for ca in ca wrong-ca; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=streamsplit test $ca" \
    -keyout "$ca-key.pem" -out "$ca.pem" 2>/dev/null
done
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout broker-key.pem -out broker.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile san.ext -out broker.pem 2>/dev/null
echo streamsplit > sasl-username
# Random per start: the tests grep every output for it.
openssl rand -hex 16 > sasl-password
chmod 600 sasl-password ca-key.pem wrong-ca-key.pem broker-key.pem

start() {
  setsid "$NISSHI" broker --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine sqlite://nisshi.db \
    --group-initial-rebalance-delay 0s "$@" >>broker.log 2>&1 < /dev/null &
  echo $! > pid
}
wait_ready() {
  for _ in $(seq 1 200); do
    if python3 "$HERE/ping.py" 127.0.0.1 "$PORT" "$@" 2>/dev/null; then return 0; fi
    if ! kill -0 "$(cat pid)" 2>/dev/null; then log "broker exited; its log follows"; cat broker.log >&2; exit 1; fi
    sleep 0.1
  done
  log "broker did not answer within 20 s; its log follows"; cat broker.log >&2; exit 1
}
stop() {
  local pid; pid="$(cat pid)"
  kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 -- "-$pid" 2>/dev/null || true
}

log "plaintext start to create the SCRAM user"
start
wait_ready
"$NISSHI" user create --broker "tcp://127.0.0.1:$PORT" --mechanism scram512 \
  "$(cat sasl-username)" "$(cat sasl-password)" >/dev/null
stop
log "starting nisshi on 127.0.0.1:$PORT with TLS and SASL (log in $STATE/broker.log)"
start --authentication --cert broker.pem --key broker-key.pem
wait_ready ca.pem
log "secure broker ready"
announce
