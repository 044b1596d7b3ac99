#!/usr/bin/env bash
# Stops the control plane started by up.sh.
set -euo pipefail
STATE="${STREAMSPLIT_STATE:-${TMPDIR:-/tmp}/streamsplit-e2e}/cluster"
for name in controller-manager apiserver etcd; do
  if [ -f "$STATE/$name.pid" ]; then
    pid="$(cat "$STATE/$name.pid")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/$name.pid"
  fi
done
