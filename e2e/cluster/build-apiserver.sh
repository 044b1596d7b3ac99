#!/usr/bin/env bash
# Builds kube-apiserver (and kube-controller-manager) v1.20.2 from Debian's own `kubernetes`
# source package, because no registry reachable here ships the binaries. The result is cached
# under $STREAMSPLIT_CACHE/kubernetes-<version>/ and reused; a fresh machine builds it (~14 min
# cold, ~4 min with a warm Go cache).
#
# Steps: deb-src entries derived from the machine's own apt sources in a private apt
# configuration (nothing system-wide changes), `apt-get source kubernetes`, Debian's reflect2
# replacing the vendored 1.0.1 (which crashes under Go 1.19 on the first custom-resource
# write), then `make WHAT=...` with Debian's golang-go.
set -euo pipefail

VERSION="1.20.2"
CACHE="${STREAMSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamsplit}"
OUT="$CACHE/kubernetes-$VERSION"
BIN="$OUT/bin"
log() { echo "cluster/build-apiserver.sh: $*" >&2; }

if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ]; then
  exit 0
fi

need=()
for pkg in golang-go dpkg-dev golang-github-modern-go-reflect2-dev rsync; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep "install ok installed" >/dev/null || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# A private apt configuration whose sources are the machine's own Debian entries as deb-src.
APT="$OUT/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc"
: > "$APT/etc/sources.list"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  # Keep only Debian's own stanzas (the archive keyring), turned into deb-src.
  python3 - "$f" >> "$APT/etc/sources.list" <<'PY'
import sys
text = open(sys.argv[1]).read()
for stanza in text.split("\n\n"):
    fields = {}
    for line in stanza.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    if "debian-archive-keyring" not in fields.get("Signed-By", ""):
        continue
    for uri in fields.get("URIs", "").split():
        for suite in fields.get("Suites", "").split():
            print(f"deb-src [signed-by={fields['Signed-By']}] {uri} {suite} {fields.get('Components', 'main')}")
PY
done
for f in /etc/apt/sources.list; do
  [ -f "$f" ] && grep -E '^deb ' "$f" | sed 's/^deb /deb-src /' >> "$APT/etc/sources.list" || true
done
[ -s "$APT/etc/sources.list" ] || { log "no Debian apt source found in /etc/apt"; exit 1; }
APT_OPTS=(-o "Dir::Etc::SourceList=$APT/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache::Archives=$APT/cache/archives"
          -o "Dir::Cache=$APT/cache")

SRC="$OUT/src"
if [ ! -d "$SRC/kubernetes" ]; then
  log "fetching the kubernetes source package"
  apt-get "${APT_OPTS[@]}" update -qq >&2
  rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
  (cd "$SRC.tmp" && apt-get "${APT_OPTS[@]}" source -qq "kubernetes=$(apt-cache "${APT_OPTS[@]}" showsrc kubernetes | awk '/^Version:/ && !v {v = $2} END {print v}')" >&2)
  dir="$(find "$SRC.tmp" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' -print -quit)"
  [ -n "$dir" ] || { log "apt-get source produced no kubernetes-* directory"; exit 1; }
  mkdir -p "$SRC" && mv "$dir" "$SRC/kubernetes" && rm -rf "$SRC.tmp"
fi

cd "$SRC/kubernetes"
grep -q "gitVersion.*v$VERSION\|$VERSION" debian/changelog 2>/dev/null || log "warning: source version is not $VERSION"
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
if [ -d "$REFLECT2" ] && ! cmp -s "$REFLECT2/go_above_118.go" vendor/github.com/modern-go/reflect2/go_above_118.go 2>/dev/null; then
  log "replacing vendored reflect2 with Debian's"
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r "$REFLECT2" vendor/github.com/modern-go/reflect2
fi

log "building kube-apiserver and kube-controller-manager (this takes a while on a cold cache)"
export GO111MODULE=off GOFLAGS= GOCACHE="$CACHE/go-build" KUBE_GIT_VERSION="v$VERSION" \
  KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2
mkdir -p "$BIN"
cp _output/local/go/bin/kube-apiserver _output/local/go/bin/kube-controller-manager "$BIN/"
log "built into $BIN"
