#!/usr/bin/env bash
# Builds the second test broker, nisshi (a Kafka-compatible broker in Rust, crates.io), once and
# caches it outside the repository: ~16 min cold on 2 cores, seconds when cached. Prints the
# binary's path. The target directory is cached too, so an interrupted build resumes.
set -euo pipefail
NISSHI_VERSION="0.8.1"
# dynostore: object-store storage, including the in-memory engine most tests use; libsql: SQLite
# storage, which keeps the SCRAM users of the secure broker (secure-up.sh).
NISSHI_FEATURES="${STREAMSPLIT_NISSHI_FEATURES:-dynostore,libsql}"
CACHE="${STREAMSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamsplit}"
ROOT="$CACHE/nisshi-$NISSHI_VERSION-${NISSHI_FEATURES//,/-}"
BIN="$ROOT/bin/nisshi"
log() { echo "kafka/build-nisshi.sh: $*" >&2; }

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
log "building nisshi $NISSHI_VERSION ($NISSHI_FEATURES) into $ROOT; ~16 min on 2 cores the first time"
mkdir -p "$ROOT"
started=$(date +%s)
cargo install --locked "nisshi@$NISSHI_VERSION" --no-default-features --features "$NISSHI_FEATURES" \
  --ignore-rust-version --root "$ROOT" --target-dir "$CACHE/nisshi-target" >&2
log "built in $(( $(date +%s) - started )) s"
echo "$BIN"
