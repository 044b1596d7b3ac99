#!/usr/bin/env bash
# Starts a single Kafka-protocol broker on 127.0.0.1 for tests and the demo, installing it first
# if needed, and waits until it answers a Kafka ApiVersions request.
#
#   e2e/kafka/up.sh            # port 19092, or $STREAMSPLIT_KAFKA_PORT
#   eval "$(e2e/kafka/up.sh)"  # exports STREAMSPLIT_TEST_BROKERS
#   STREAMSPLIT_KAFKA_KEEP_DATA=1 e2e/kafka/up.sh   # restart on the data of the last run (broker
#                                                   # bounce tests); a fresh data dir otherwise
#
# The broker is noida-db (PyPI, prebuilt, Kafka protocol incl. groups, idempotence and
# transactions), installed into a virtualenv under the cache directory. Idempotent: a broker
# already answering on the port is reused.
set -euo pipefail

NOIDA_VERSION="0.2.3"
PORT="${STREAMSPLIT_KAFKA_PORT:-19092}"
CACHE="${STREAMSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamsplit}"
STATE="${STREAMSPLIT_STATE:-${TMPDIR:-/tmp}/streamsplit-e2e}/kafka-$PORT"
VENV="$CACHE/noida-db-$NOIDA_VERSION"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "kafka/up.sh: $*" >&2; }

if python3 "$HERE/ping.py" 127.0.0.1 "$PORT" 2>/dev/null; then
  log "broker already answering on 127.0.0.1:$PORT"
  echo "export STREAMSPLIT_TEST_BROKERS=127.0.0.1:$PORT"
  exit 0
fi

if [ ! -x "$VENV/bin/noida-db" ]; then
  log "installing noida-db $NOIDA_VERSION into $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "noida-db==$NOIDA_VERSION" >&2
fi

# The console script is a Python wrapper that spawns the server; run the server itself so the
# recorded pid is the broker and down.sh really stops it.
SERVER="$(find "$VENV/lib" -path '*/noida_db/noida-db' -type f | head -1)"
[ -x "$SERVER" ] || { log "noida-db server binary not found in $VENV"; exit 1; }

mkdir -p "$STATE"
[ "${STREAMSPLIT_KAFKA_KEEP_DATA:-0}" = 1 ] || rm -rf "$STATE/data"
log "starting noida-db on 127.0.0.1:$PORT (data in $STATE/data, log in $STATE/broker.log)"
# setsid detaches the broker from the caller's process group so it outlives the calling shell.
setsid "$SERVER" start --only kafka --host 127.0.0.1 --kafka-port "$PORT" \
  --data-dir "$STATE/data" >"$STATE/broker.log" 2>&1 < /dev/null &
echo $! > "$STATE/pid"

for _ in $(seq 1 200); do
  if python3 "$HERE/ping.py" 127.0.0.1 "$PORT" 2>/dev/null; then
    log "broker ready"
    echo "export STREAMSPLIT_TEST_BROKERS=127.0.0.1:$PORT"
    exit 0
  fi
  if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    log "broker exited; its log follows"
    cat "$STATE/broker.log" >&2
    exit 1
  fi
  sleep 0.1
done
log "broker did not answer within 20 s; its log follows"
cat "$STATE/broker.log" >&2
exit 1
