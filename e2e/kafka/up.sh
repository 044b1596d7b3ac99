#!/usr/bin/env bash
# Starts a single Kafka-protocol broker on 127.0.0.1 for tests and the demo, installing it first
# if needed, and waits until it answers a Kafka ApiVersions request.
#
#   e2e/kafka/up.sh            # port 19092, or $STREAMSPLIT_KAFKA_PORT
#   eval "$(e2e/kafka/up.sh)"  # exports STREAMSPLIT_TEST_BROKERS
#   STREAMSPLIT_KAFKA_KEEP_DATA=1 e2e/kafka/up.sh   # restart on the data of the last run (broker
#                                                   # bounce tests); a fresh data dir otherwise
#   STREAMSPLIT_KAFKA_KIND=nisshi e2e/kafka/up.sh   # the second broker, nisshi (port 19094 unless
#                                                   # $STREAMSPLIT_KAFKA_PORT), built once by
#                                                   # build-nisshi.sh; in-memory storage, or
#                                                   # SQLite in the state directory with
#                                                   # STREAMSPLIT_KAFKA_PERSIST=1 (broker bounces)
#
# The broker is noida-db (PyPI, prebuilt, Kafka protocol incl. groups, idempotence and
# transactions), installed into a virtualenv under the cache directory. Idempotent: a broker
# already answering on the port is reused.
set -euo pipefail

NOIDA_VERSION="0.2.3"
KIND="${STREAMSPLIT_KAFKA_KIND:-noida}"
# The variable the broker's address is printed as, for `eval "$(e2e/kafka/up.sh)"`.
case "$KIND" in
  noida) DEFAULT_PORT=19092; VAR=STREAMSPLIT_TEST_BROKERS ;;
  nisshi) DEFAULT_PORT=19094; VAR=STREAMSPLIT_TEST_NISSHI ;;
  *) echo "kafka/up.sh: unknown STREAMSPLIT_KAFKA_KIND=$KIND (noida or nisshi)" >&2; exit 2 ;;
esac
PORT="${STREAMSPLIT_KAFKA_PORT:-$DEFAULT_PORT}"
CACHE="${STREAMSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamsplit}"
STATE="${STREAMSPLIT_STATE:-${TMPDIR:-/tmp}/streamsplit-e2e}/kafka-$PORT"
VENV="$CACHE/noida-db-$NOIDA_VERSION"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "kafka/up.sh: $*" >&2; }

if python3 "$HERE/ping.py" 127.0.0.1 "$PORT" 2>/dev/null; then
  log "broker already answering on 127.0.0.1:$PORT"
  echo "export $VAR=127.0.0.1:$PORT"
  exit 0
fi

mkdir -p "$STATE"
if [ "$KIND" = nisshi ]; then
  NISSHI="$("$HERE/build-nisshi.sh")"
  STORAGE=memory://nisshi/
  if [ "${STREAMSPLIT_KAFKA_PERSIST:-0}" = 1 ]; then
    # SQLite commits every acknowledged write; the file is relative to the working directory.
    [ "${STREAMSPLIT_KAFKA_KEEP_DATA:-0}" = 1 ] || rm -f "$STATE"/nisshi.db*
    STORAGE=sqlite://nisshi.db
  fi
  log "starting nisshi on 127.0.0.1:$PORT (storage $STORAGE, log in $STATE/broker.log)"
  (cd "$STATE" && exec setsid "$NISSHI" broker --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine "$STORAGE" \
    --group-initial-rebalance-delay 0s >>"$STATE/broker.log" 2>&1 < /dev/null) &
  echo $! > "$STATE/pid"
  SERVER_STARTED=1
fi

if [ -z "${SERVER_STARTED:-}" ] && [ ! -x "$VENV/bin/noida-db" ]; then
  log "installing noida-db $NOIDA_VERSION into $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "noida-db==$NOIDA_VERSION" >&2
fi

if [ -z "${SERVER_STARTED:-}" ]; then
  # The console script is a Python wrapper that spawns the server; run the server itself so the
  # recorded pid is the broker and down.sh really stops it.
  SERVER="$(find "$VENV/lib" -path '*/noida_db/noida-db' -type f -print -quit)"
  [ -x "$SERVER" ] || { log "noida-db server binary not found in $VENV"; exit 1; }
  [ "${STREAMSPLIT_KAFKA_KEEP_DATA:-0}" = 1 ] || rm -rf "$STATE/data"
  log "starting noida-db on 127.0.0.1:$PORT (data in $STATE/data, log in $STATE/broker.log)"
  # setsid detaches the broker from the caller's process group so it outlives the calling shell.
  setsid "$SERVER" start --only kafka --host 127.0.0.1 --kafka-port "$PORT" \
    --data-dir "$STATE/data" >"$STATE/broker.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pid"
fi

for _ in $(seq 1 200); do
  if python3 "$HERE/ping.py" 127.0.0.1 "$PORT" 2>/dev/null; then
    log "broker ready"
    echo "export $VAR=127.0.0.1:$PORT"
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
