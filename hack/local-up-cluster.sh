#!/usr/bin/env bash
# A working single-node cluster from this checkout, in one command:
#
#   hack/local-up-cluster.sh            # embedded store
#   hack/local-up-cluster.sh --etcd     # a real etcd (started here, data in the state dir)
#
# Installs what is missing from Debian (containerd, runc, CNI plugins, iptables/nftables, conntrack,
# busybox-static, openssl; needs root), builds the release binaries, creates the PKI and
# kubeconfigs, builds and imports the local images, then starts containerd, the
# apiserver, controller-manager, scheduler, kubelet, kube-proxy, the cluster DNS,
# metrics-server (the Metrics API: kubectl top, HPAs) and the CSI driver csi-hostpath
# with the default StorageClass (claims get node-local volumes that grow online), waits
# for the node to be Ready and says how to use kubectl. Ctrl-C (SIGINT/SIGTERM) stops
# everything; a second run reuses the state.
#
# Knobs (environment): LOCAL_CLUSTER_DIR (.local-cluster), LOCAL_CLUSTER_BIN_DIR (use
# these binaries, no build), NODE_IP (the host's primary address), NODE_NAME (hostname),
# API_PORT (6443), PROXY_MODE (iptables | nftables), DNS_FORWARD (upstream resolvers for
# names outside the cluster; default: this host's /etc/resolv.conf; `none`),
# METRICS_PORT (metrics-server's, 4443), METRIC_RESOLUTION (15s).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STORE=embedded
for a in "$@"; do
  case "$a" in
    --etcd) STORE=etcd ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $a (try --help)" >&2; exit 2 ;;
  esac
done
DIR=$(realpath -m "${LOCAL_CLUSTER_DIR:-$ROOT/.local-cluster}")
API_PORT=${API_PORT:-6443}
METRICS_PORT=${METRICS_PORT:-4443}
METRIC_RESOLUTION=${METRIC_RESOLUTION:-15s}
PROXY_MODE=${PROXY_MODE:-iptables}
# As upstream's local-up-cluster.sh: a development machine may well have swap on.
FAIL_SWAP_ON=${FAIL_SWAP_ON:-false}
# Upstream's script's thresholds (no imagefs one: images share the node's disk here).
EVICTION_HARD=${EVICTION_HARD:-"memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%"}
SERVICE_CIDR=10.0.0.0/24
KUBERNETES_IP=10.0.0.1
DNS_IP=10.0.0.10
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
log() { echo "[local-up-cluster] $*"; }
# A v1.35 kubelet refuses cgroup v1 hosts unless told otherwise; on one, say so and run.
if [ -z "${FAIL_CGROUPV1:-}" ]; then
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then FAIL_CGROUPV1=true; else
    FAIL_CGROUPV1=false
    log "this host uses cgroup v1, which Kubernetes v1.35 deprecates: the kubelet runs with --fail-cgroupv1=false (FAIL_CGROUPV1=true to refuse)"
  fi
fi

# 1. Debian packages.
# What the cluster needs, as "<command or file> <package>"; building from source also
# needs a C compiler (ring) and protoc with its well-known types (etcd-client, CRI).
requirements="containerd containerd
runc runc
/usr/lib/cni/bridge containernetworking-plugins
iptables iptables
nft nftables
conntrack conntrack
openssl openssl
curl curl
python3 python3
/bin/busybox busybox-static
ip iproute2
sysctl procps
mount mount
losetup util-linux
mkfs.ext4 e2fsprogs"
if [ "$STORE" = etcd ]; then requirements+=$'\netcd etcd-server'; fi
if [ -z "${LOCAL_CLUSTER_BIN_DIR:-}" ]; then
  requirements+=$'\ncc gcc\nprotoc protobuf-compiler\n/usr/include/google/protobuf/descriptor.proto libprotobuf-dev'
fi
if [ -n "${LOCAL_CLUSTER_LIST_PACKAGES:-}" ]; then
  echo "$requirements" | awk '{print $2}'
  exit 0
fi
need=()
while read -r what pkg; do
  case $what in
    /*) [ -e "$what" ] || need+=("$pkg") ;;
    *) command -v "$what" >/dev/null || need+=("$pkg") ;;
  esac
done <<< "$requirements"
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "missing packages (${need[*]}); run as root to install them" >&2; exit 1; }
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

if [ -z "${NODE_IP:-}" ]; then
  NODE_IP=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i == "src") { print $(i+1); exit }}')
  [ -n "$NODE_IP" ] || NODE_IP=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
  [ -n "$NODE_IP" ] || { echo "cannot find this host's address; set NODE_IP" >&2; exit 1; }
fi
# 2. Binaries.
if [ -n "${LOCAL_CLUSTER_BIN_DIR:-}" ]; then
  BIN=$(realpath "$LOCAL_CLUSTER_BIN_DIR")
else
  log "building release binaries"
  cargo build --release --bin kube-apiserver --bin kube-controller-manager --bin kube-scheduler \
    --bin kubelet --bin kube-proxy --bin cluster-dns --bin metrics-server --bin csi-hostpath \
    --bin kubectl
  BIN=$ROOT/target/release
fi
KUBECTL=$(command -v kubectl || true)

mkdir -p "$DIR"/{pki,logs,containerd/cni,kubelet,manifests,images}
PKI=$DIR/pki

# 3. PKI (kept across runs).
cert() { # name subject [extfile-lines]; signed by $CA (default: the cluster CA)
  local name=$1 subj=$2 ext=${3:-} ca=${CA:-ca}
  [ -f "$PKI/$name.crt" ] && return 0
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$ext" > "$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 365 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
}
if [ ! -f "$PKI/ca.crt" ]; then
  log "creating the cluster CA and certificates in $PKI"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=kubernetes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
fi
# The front proxy's own CA: the aggregator's client certificate vouches for the users it
# names to extension API servers (as kubeadm's front-proxy-ca).
[ -f "$PKI/front-proxy-ca.crt" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 3650 -subj /CN=front-proxy-ca -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" 2>/dev/null
[ -f "$PKI/sa.key" ] || { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null;
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
cert apiserver /CN=kube-apiserver "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
cert admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth"
cert controller-manager /CN=system:kube-controller-manager "extendedKeyUsage=clientAuth"
cert scheduler /CN=system:kube-scheduler "extendedKeyUsage=clientAuth"
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
cert kube-proxy /CN=system:kube-proxy "extendedKeyUsage=clientAuth"
cert metrics-server /CN=system:metrics-server "extendedKeyUsage=clientAuth"
cert csi-hostpath /CN=system:csi-hostpath "extendedKeyUsage=clientAuth"
CA=front-proxy-ca cert front-proxy-client /CN=front-proxy-client "extendedKeyUsage=clientAuth"
cert kubelet-serving "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"

kubeconfig() { # name cert
  cat > "$DIR/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $PKI/ca.crt
  name: local
contexts:
- context: {cluster: local, user: $1}
  name: local
current-context: local
users:
- name: $1
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
KC
}
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig kubelet kubelet
kubeconfig kube-proxy kube-proxy
kubeconfig metrics-server metrics-server
kubeconfig csi-hostpath csi-hostpath
export KUBECONFIG=$DIR/admin.kubeconfig

pids=()
cleanup() {
  trap - INT TERM EXIT
  log "stopping"
  # Everything but containerd (the first one started) first, then the pods' tasks, then
  # containerd itself; shims that outlive it are stopped too.
  for ((i = ${#pids[@]} - 1; i >= 1; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 1; i--)); do wait "${pids[i]}" 2>/dev/null || true; done
  local sock=$DIR/containerd/containerd.sock
  if [ -S "$sock" ]; then
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
    done
  fi
  [ ${#pids[@]} -gt 0 ] && { kill "${pids[0]}" 2>/dev/null || true; wait "${pids[0]}" 2>/dev/null || true; }
  pkill -f "containerd-shim.*$sock" 2>/dev/null || true
  log "stopped"
}
trap cleanup INT TERM EXIT
start() { # name args...
  local name=$1; shift
  "$@" >"$DIR/logs/$name.log" 2>&1 &
  pids+=($!)
}

# 4. containerd with the CNI bridge for this node's pods.
cat > "$DIR/containerd/cni/10-local.conflist" <<CNI
{"cniVersion": "1.0.0", "name": "local-pod-network", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
CNI
cat > "$DIR/containerd/config.toml" <<CTD
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$DIR/containerd/containerd.sock"
[ttrpc]
  address = "$DIR/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/containerd/cni"
CTD
sysctl -qw net.ipv4.ip_forward=1 2>/dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
start containerd containerd --config "$DIR/containerd/config.toml"
for _ in $(seq 100); do [ -S "$DIR/containerd/containerd.sock" ] && break; sleep 0.1; done
[ -f "$DIR/images/pause.tar" ] || python3 "$ROOT/hack/build-test-images.py" "$DIR/images"
for img in pause busybox; do
  ctr --address "$DIR/containerd/containerd.sock" -n k8s.io images import "$DIR/images/$img.tar" >/dev/null
done

# 5. The control plane.
store=(--data-dir="$DIR/data")
if [ "$STORE" = etcd ]; then
  start etcd etcd --data-dir "$DIR/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
  store=(--etcd-servers=http://127.0.0.1:2379)
fi
start kube-apiserver "$BIN/kube-apiserver" --bind-address=0.0.0.0 --advertise-address="$NODE_IP" \
  --secure-port="$API_PORT" "${store[@]}" --cert-dir="$PKI" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --service-cluster-ip-range="$SERVICE_CIDR" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --enable-aggregator-routing=true
ready=
for _ in $(seq 300); do
  if curl -sk --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
      "https://$NODE_IP:$API_PORT/readyz" 2>/dev/null | grep -q '^ok'; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "kube-apiserver did not become ready; see $DIR/logs/kube-apiserver.log" >&2; exit 1; }
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --cert-dir="$PKI/controller-manager" --leader-elect=false \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=true
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$DIR/scheduler.kubeconfig" --authorization-kubeconfig="$DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --cert-dir="$PKI/scheduler" --leader-elect=false

# 6. The node.
start kubelet "$BIN/kubelet" --kubeconfig="$DIR/kubelet.kubeconfig" \
  --container-runtime-endpoint="unix://$DIR/containerd/containerd.sock" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$DIR/kubelet" \
  --pod-logs-dir="$DIR/logs/pods" --pod-manifest-path="$DIR/manifests" \
  --cluster-dns="$DNS_IP" --cluster-domain=cluster.local \
  --tls-cert-file="$PKI/kubelet-serving.crt" --tls-private-key-file="$PKI/kubelet-serving.key" \
  --client-ca-file="$PKI/ca.crt" --anonymous-auth=false --authentication-token-webhook \
  --authorization-mode=Webhook --fail-swap-on="$FAIL_SWAP_ON" --eviction-hard="$EVICTION_HARD" \
  --fail-cgroupv1="$FAIL_CGROUPV1"
start kube-proxy "$BIN/kube-proxy" --kubeconfig="$DIR/kube-proxy.kubeconfig" --proxy-mode="$PROXY_MODE" \
  --hostname-override="$NODE_NAME" --cluster-cidr="$CLUSTER_CIDR" \
  --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249
start cluster-dns "$BIN/cluster-dns" --kubeconfig="$DIR/admin.kubeconfig" --listen="$NODE_IP:53" \
  ${DNS_FORWARD:+--forward="$DNS_FORWARD"}

# 7. The DNS add-on's Service, then wait for the node.
apply() { # stdin: a manifest
  curl -sk --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" -X POST \
    -H 'Content-Type: application/json' --data-binary @- "https://$NODE_IP:$API_PORT$1" >/dev/null
}
apply /api/v1/namespaces/kube-system/services <<JSON
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
 "spec": {"clusterIP": "$DNS_IP", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}
JSON
apply /apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices <<JSON
{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
 "metadata": {"name": "kube-dns-host", "labels": {"kubernetes.io/service-name": "kube-dns"}},
 "addressType": "IPv4", "endpoints": [{"addresses": ["$NODE_IP"], "conditions": {"ready": true}}],
 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}
JSON
# The Metrics API: metrics-server's permissions (as cluster/addons/metrics-server/rbac.yaml,
# for its certificate's user), a Service whose endpoint is the process, the APIService.
rbac=/apis/rbac.authorization.k8s.io/v1
apply $rbac/clusterroles <<JSON
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:aggregated-metrics-reader",
 "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true", "rbac.authorization.k8s.io/aggregate-to-edit": "true", "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
 "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]}
JSON
apply $rbac/clusterroles <<JSON
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:metrics-server"},
 "rules": [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}, {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]}
JSON
user='[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:metrics-server"}]'
apply $rbac/clusterrolebindings <<JSON
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:metrics-server"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:metrics-server"}, "subjects": $user}
JSON
apply $rbac/clusterrolebindings <<JSON
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "metrics-server:system:auth-delegator"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"}, "subjects": $user}
JSON
apply $rbac/namespaces/kube-system/rolebindings <<JSON
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "metrics-server-auth-reader"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"}, "subjects": $user}
JSON
apply /api/v1/namespaces/kube-system/services <<JSON
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics-server", "labels": {"k8s-app": "metrics-server"}},
 "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": $METRICS_PORT}]}}
JSON
apply /apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices <<JSON
{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
 "metadata": {"name": "metrics-server-host", "labels": {"kubernetes.io/service-name": "metrics-server"}},
 "addressType": "IPv4", "endpoints": [{"addresses": ["$NODE_IP"], "conditions": {"ready": true}}],
 "ports": [{"name": "https", "port": $METRICS_PORT, "protocol": "TCP"}]}
JSON
apply /apis/apiregistration.k8s.io/v1/apiservices <<JSON
{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": {"k8s-app": "metrics-server"}},
 "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100, "insecureSkipTLSVerify": true,
  "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443}}}
JSON
# metrics-server itself (cluster/addons/metrics-server runs it as a Deployment; here, like
# the DNS add-on, a process on the node with its own certificate identity), once it may
# read the front proxy's settings.
for _ in $(seq 100); do
  curl -sfk --cacert "$PKI/ca.crt" --cert "$PKI/metrics-server.crt" --key "$PKI/metrics-server.key" -o /dev/null \
    "https://$NODE_IP:$API_PORT/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication" && break
  sleep 0.1
done
start metrics-server "$BIN/metrics-server" --kubeconfig="$DIR/metrics-server.kubeconfig" \
  --authentication-kubeconfig="$DIR/metrics-server.kubeconfig" --authorization-kubeconfig="$DIR/metrics-server.kubeconfig" \
  --bind-address="$NODE_IP" --secure-port="$METRICS_PORT" --cert-dir="$PKI/metrics-server" \
  --kubelet-preferred-address-types=InternalIP --kubelet-certificate-authority="$PKI/ca.crt" \
  --metric-resolution="$METRIC_RESOLUTION"
# Storage: csi-hostpath's permissions, CSIDriver and the default StorageClass
# (cluster/addons/csi-hostpath runs the driver as a DaemonSet; here, a process on the node
# with its own certificate identity, registered through the kubelet's plugin registry).
"$BIN/kubectl" --kubeconfig="$DIR/admin.kubeconfig" apply \
  -f cluster/addons/csi-hostpath/rbac.yaml -f cluster/addons/csi-hostpath/csidriver.yaml \
  -f cluster/addons/csi-hostpath/storageclass.yaml >/dev/null
"$BIN/kubectl" --kubeconfig="$DIR/admin.kubeconfig" create clusterrolebinding system:csi-hostpath-node \
  --clusterrole=system:csi-hostpath --user=system:csi-hostpath --dry-run=client -o yaml \
  | "$BIN/kubectl" --kubeconfig="$DIR/admin.kubeconfig" apply -f - >/dev/null
CSI_SOCKET=$DIR/kubelet/plugins/hostpath.csi.k8s.io/csi.sock
start csi-hostpath env NAMESPACE=kube-system "$BIN/csi-hostpath" --kubeconfig="$DIR/csi-hostpath.kubeconfig" \
  --endpoint="unix://$CSI_SOCKET" --kubelet-registration-path="$CSI_SOCKET" \
  --plugin-registration-path="$DIR/kubelet/plugins_registry" --nodeid="$NODE_NAME" \
  --statedir="$DIR/csi-hostpath" --enable-provisioner --enable-resizer --enable-capacity
ready=
for _ in $(seq 600); do
  if curl -sk --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
      "https://$NODE_IP:$API_PORT/api/v1/nodes/$NODE_NAME" 2>/dev/null \
      | python3 -c 'import json,sys; n=json.load(sys.stdin); sys.exit(0 if any(c["type"]=="Ready" and c["status"]=="True" for c in n.get("status",{}).get("conditions",[])) else 1)' 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "node $NODE_NAME did not become Ready; see $DIR/logs/kubelet.log" >&2; exit 1; }

cat <<MSG
[local-up-cluster] Cluster is up: node $NODE_NAME ($NODE_IP) is Ready; store: $STORE; kube-proxy: $PROXY_MODE.
  export KUBECONFIG=$DIR/admin.kubeconfig
  kubectl get nodes
  kubectl apply -f <manifest>     # images: registry.k8s.io/e2e-test-images/busybox:1.36, pause:3.10
Logs: $DIR/logs. Ctrl-C stops the cluster; running this again reuses $DIR.
MSG
wait -n "${pids[@]}" || true
log "a component exited; see $DIR/logs"
