#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1 for tests and the demo: etcd (Debian's
# etcd-server), kube-apiserver and kube-controller-manager v1.20.2 (built from Debian's source
# package by build-apiserver.sh and cached). There is no kubelet: pods never run. Prints
# `export KUBECONFIG=...`. Idempotent: a running control plane is reused.
#
#   eval "$(e2e/cluster/up.sh)" && kubectl get ns
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STREAMSPLIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamsplit}"
STATE="${STREAMSPLIT_STATE:-${TMPDIR:-/tmp}/streamsplit-e2e}/cluster"
BIN="$CACHE/kubernetes-1.20.2/bin"
API_PORT="${STREAMSPLIT_APISERVER_PORT:-16443}"
ETCD_PORT="${STREAMSPLIT_ETCD_PORT:-23790}"
KUBECONFIG_FILE="$STATE/kubeconfig"
log() { echo "cluster/up.sh: $*" >&2; }

ready() {
  [ -f "$KUBECONFIG_FILE" ] && "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz >/dev/null 2>&1
}

# kubectl: the machine's, else Debian's kubernetes-client.
KUBECTL="$(command -v kubectl || true)"
need=()
[ -n "$KUBECTL" ] || need+=(kubernetes-client)
command -v etcd >/dev/null || need+=(etcd-server)
command -v openssl >/dev/null || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >&2
  # etcd-server's own service cannot start without systemd; that is fine, we run our own etcd.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 || true
  KUBECTL="$(command -v kubectl)"
  command -v etcd >/dev/null || { log "etcd is not installed"; exit 1; }
fi

if ready; then
  log "control plane already running"
  echo "export KUBECONFIG=$KUBECONFIG_FILE"
  exit 0
fi

"$HERE/build-apiserver.sh"

"$HERE/down.sh" 2>/dev/null || true
rm -rf "$STATE" && mkdir -p "$STATE/pki" "$STATE/etcd"
PKI="$STATE/pki"
log "creating certificates and credentials in $PKI"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=streamsplit-e2e-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' > "$PKI/san.ext"
openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
  -days 30 -extfile "$PKI/san.ext" -out "$PKI/apiserver.crt" 2>/dev/null
openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
TOKEN="$(openssl rand -hex 24)"
echo "$TOKEN,streamsplit-admin,streamsplit-admin,system:masters" > "$PKI/tokens.csv"

log "starting etcd on 127.0.0.1:$ETCD_PORT"
setsid etcd --data-dir "$STATE/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" \
  --unsafe-no-fsync >"$STATE/etcd.log" 2>&1 < /dev/null &
echo $! > "$STATE/etcd.pid"

log "starting kube-apiserver on 127.0.0.1:$API_PORT"
setsid "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-account-issuer https://kubernetes.default.svc \
  --authorization-mode RBAC --endpoint-reconciler-type none \
  --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true \
  --cert-dir "$PKI" >"$STATE/apiserver.log" 2>&1 < /dev/null &
echo $! > "$STATE/apiserver.pid"

cat > "$KUBECONFIG_FILE" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: streamsplit-e2e
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: streamsplit-admin
  user:
    token: $TOKEN
contexts:
- name: streamsplit-e2e
  context: {cluster: streamsplit-e2e, user: streamsplit-admin, namespace: default}
current-context: streamsplit-e2e
KCFG

for _ in $(seq 1 600); do
  ready && break
  if ! kill -0 "$(cat "$STATE/apiserver.pid")" 2>/dev/null; then
    log "kube-apiserver exited; its log follows"; tail -40 "$STATE/apiserver.log" >&2; exit 1
  fi
  sleep 0.1
done
ready || { log "kube-apiserver not ready after 60 s"; tail -40 "$STATE/apiserver.log" >&2; exit 1; }

log "starting kube-controller-manager (garbage collection, namespace deletion)"
setsid "$BIN/kube-controller-manager" --kubeconfig "$KUBECONFIG_FILE" \
  --authentication-kubeconfig "$KUBECONFIG_FILE" --authorization-kubeconfig "$KUBECONFIG_FILE" \
  --controllers garbagecollector,namespace,serviceaccount,serviceaccount-token,clusterrole-aggregation \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --leader-elect=false --port 0 --secure-port 0 >"$STATE/controller-manager.log" 2>&1 < /dev/null &
echo $! > "$STATE/controller-manager.pid"

log "ready"
echo "export KUBECONFIG=$KUBECONFIG_FILE"
