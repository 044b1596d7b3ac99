#!/usr/bin/env bash
# Stops the broker started by up.sh on the same port.
set -euo pipefail
PORT="${STREAMSPLIT_KAFKA_PORT:-19092}"
STATE="${STREAMSPLIT_STATE:-${TMPDIR:-/tmp}/streamsplit-e2e}/kafka-$PORT"
if [ -f "$STATE/pid" ]; then
  pid="$(cat "$STATE/pid")"
  # up.sh started the broker in its own session: stop the whole group.
  if kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # A broker still up after 10 s would keep answering on the port, and the next up.sh would
    # take it for a running broker: make sure it is gone.
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$STATE/pid"
  echo "kafka/down.sh: stopped broker on port $PORT" >&2
fi
