#!/usr/bin/env bash
# A throw-away Kubernetes control plane for the e2e tests: etcd and
# kube-apiserver on free 127.0.0.1 ports, with the Istio CRDs installed, and on
# request a real istiod. There is no controller manager, scheduler or kubelet:
# objects are stored and served, nothing reconciles them (istiod aside).
#
# The "pod network" is podnet (hack/podnet): kube-apiserver reaches pod IPs
# (10.244.0.0/16) through it, as a real API server reaches pods through its
# egress proxy (konnectivity), and podnet maps every pod IP to 127.0.0.1, where
# the processes that stand in for pods listen, each on a port of its own. So
# the API server's service proxy (.../services/NAME:PORT/proxy/...) reaches a
# Service whose EndpointSlice names such a pod and the process's real port.
#
#   hack/cluster.sh up DIR [--crd-versions LIST] [--gateway-api] [--istiod]
#                          [--cluster-id ID]
#       Starts a cluster whose state, logs and config live in DIR (created if
#       needed) and prints DIR/env on stdout. DIR/env is shell-sourceable:
#         KUBECONFIG, CANARY_E2E_KUBECONFIG   admin kubeconfig (canary-admin,
#                                             system:masters; contexts admin
#                                             (default) and user)
#         CANARY_E2E_USER_KUBECONFIG          canary-user only, no RBAC grants
#         CANARY_E2E_KUBECTL, CANARY_E2E_BIN  the built kubectl and its folder
#         CANARY_E2E_SERVER                   https://127.0.0.1:PORT
#         CANARY_E2E_DIR                      DIR
#         CANARY_E2E_AUDIT_LOG                DIR/audit.log (level Metadata)
#         CANARY_E2E_ETCD                     http://127.0.0.1:PORT
#         CANARY_E2E_CRD_VERSIONS             LIST, or empty
#         CANARY_E2E_GATEWAY_API              the served Gateway API version
#                                             (bundle-version, e.g. v1.6.0)
#                                             with --gateway-api, else empty
#         CANARY_E2E_CLUSTER_SH               this script
#         CANARY_E2E_ISTIOCTL                 the built istioctl (also
#                                             without --istiod: validate,
#                                             analyze --use-kube=false)
#         CANARY_E2E_ISTIOD                   1 with --istiod, else empty
#         CANARY_E2E_ISTIOD_HTTP              istiod's http address (/ready,
#                                             /debug/...), 127.0.0.1:PORT
#         CANARY_E2E_ISTIOD_XDS               its plaintext xDS (gRPC) address
#         CANARY_E2E_ISTIOD_MONITORING        its monitoring address (/metrics,
#                                             /debug/...)
#                                             (the last three empty without
#                                             --istiod)
#       (Source it by a path with a slash: `source env` finds /usr/bin/env.)
#       Also in DIR: kubeconfig, user.kubeconfig, pids, audit.log, etcd.log,
#       kube-apiserver.log, tokens.csv, istio-crds.yaml (as applied), podnet
#       (the binary), podnet.sock, podnet.log, egress-selector.yaml, kubelet
#       and kubelet.log (the stand-in kubelet of Node local-node, 10.244.0.1,
#       which serves port forwarding to any pod's loopback); with
#       --istiod also istiod.kubeconfig (user istiod, system:masters, so its
#       requests stand apart from the tests' in the audit log), istiod.log,
#       istiod/ (its working folder).
#       --crd-versions v1beta1,v1alpha3 serves the networking.istio.io CRDs only
#       at those versions (the first one listed that a CRD has is its storage
#       version), like an older cluster. Namespace istio-system exists.
#       --gateway-api also installs the Kubernetes Gateway API CRDs of the
#       standard channel (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute, Gateway,
#       ...) from sigs.k8s.io/gateway-api at the version the pinned Istio
#       requires (hack/tools/istio/go.mod), as gateway-api-crds.yaml.
#       ServiceAccount admission is off, so pods can be created in any
#       namespace (they stay Pending: there are no nodes).
#       --istiod runs pilot-discovery (Istio's control plane, built from
#       istio.io/istio) against the cluster, every listener on a free
#       127.0.0.1 port, and registers it as a cluster would have it: Pod
#       istio-system/istiod-local (Pending, status.podIP 10.244.0.2), Service
#       istio-system/istiod (grpc-xds 15010, http-monitoring 15014,
#       http-debug 8080) and its EndpointSlice (10.244.0.2 with the real
#       loopback ports), so that e.g. `kubectl get --raw
#       /api/v1/namespaces/istio-system/services/http:istiod:15014/proxy/debug/syncz`
#       reaches it through podnet. istiod writes into the cluster as it would
#       in a real one (ConfigMap istio-ca-root-cert in every namespace, its
#       CA Secret and leader-election Leases in istio-system).
#       --cluster-id ID is the Istio cluster ID of the cluster's istiod (its
#       CLUSTER_ID, in the process's and the Pod's environment, as Istio's
#       chart sets it), which Istio's metrics carry as source_cluster and
#       destination_cluster; Istio's default, Kubernetes, without it.
#   hack/cluster.sh replica DIR NAME
#       With istiod running in DIR's cluster, starts another replica named
#       NAME (Pod istio-system/NAME, pod IP 10.244.0.3, .4, ..., its own
#       EndpointSlice of Service istiod, listeners on free 127.0.0.1 ports,
#       log DIR/NAME.log) and prints its CANARY_E2E_ISTIOD_HTTP, _XDS and
#       _MONITORING addresses on one line. `down` stops it with the rest.
#   hack/cluster.sh replica --stop DIR NAME
#       Removes that replica: its EndpointSlice and Pod, then the process.
#   hack/cluster.sh down DIR
#       Stops that cluster: istiod, kubelet, kube-apiserver, podnet, then etcd, each by
#       the pid in DIR/pids, SIGKILL after a bounded wait. Idempotent.
#   hack/cluster.sh run [--crd-versions LIST] [--gateway-api] [--istiod] -- CMD ARGS...
#       up in a temporary folder, run CMD with DIR/env in its environment, then
#       down and remove the folder, also on failure, Ctrl-C or SIGTERM. Exits
#       with CMD's exit code (130/143 when interrupted). Clusters that CMD
#       starts itself with `up` are stopped too. CANARY_CLUSTER_KEEP=1 keeps
#       the folder (logs, audit log) and prints where it is.
set -euo pipefail

hack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$hack/.." && pwd)
self=$hack/cluster.sh

# Go's default install folder, for shells whose PATH lacks it.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
for tool in go python3 openssl curl setsid; do
  command -v "$tool" >/dev/null || { echo "cluster: error: $tool not found" >&2; exit 1; }
done

# Bounds, in seconds.
ready_timeout=60   # etcd health, kube-apiserver /readyz (about 3 s here),
                   # istiod /ready, the service proxy reaching istiod
stop_timeout=10    # graceful shutdown before SIGKILL (about 1 s here)
child_timeout=15   # for CMD of `run` to exit after a forwarded signal

# The processes `up` starts, in the order `down` stops them: istiod before
# the API server it watches; podnet after the API server that tunnels
# through it; etcd last.
procs=(istiod kubelet kube-apiserver podnet etcd)

# The fake pod network: podnet tunnels the API server's connections to these
# IPs to 127.0.0.1. istiod's pod gets the first usable address after the
# network's gateway.
pod_cidr=10.244.0.0/16
istiod_pod_ip=10.244.0.2
# The one node, whose stand-in kubelet (hack/kubelet) serves port forwarding.
node_name=local-node
node_ip=10.244.0.1

log() { echo "cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

# since T0: seconds elapsed since $EPOCHREALTIME was T0, e.g. 2.31.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

usage() {
  sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# free_ports N prints N distinct free TCP ports on 127.0.0.1. All sockets are
# held open until every port is chosen, so the N ports differ. Another process
# may still take one before our server binds it: `up` then retries.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# alive PID: the process exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# ours PID DIR: PID's command line mentions DIR, so it is one of the processes
# that `up DIR` started and not an unrelated process that reused the pid.
ours() {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# wait_gone PID SECONDS: wait until PID is gone; fails if it is still there.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# stop_pid NAME PID DIR: SIGTERM, bounded wait, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 dir=$3
  alive "$pid" || return 0
  if ! ours "$pid" "$dir"; then
    log "pid $pid is no longer the $name of $dir; leaving it alone"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$stop_timeout"; then
    log "$name (pid $pid) still running after ${stop_timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || die "$name (pid $pid) survived SIGKILL"
  fi
}

# descendants PID prints PID and all processes below it.
descendants() {
  ps -e -o pid=,ppid= | awk -v top="$1" '
    { parent[$1] = $2 }
    END {
      print top; found[top] = 1
      do {
        more = 0
        for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; print p; more = 1 }
      } while (more)
    }'
}

tail_logs() {
  local dir=$1 f
  for f in "$dir/etcd.log" "$dir/podnet.log" "$dir/kube-apiserver.log" "$dir/istiod.log"; do
    [[ -s $f ]] || continue
    log "last lines of $f:"
    tail -n 15 "$f" | sed 's/^/    /' >&2
  done
}

pid_of() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$2/pids" 2>/dev/null; }
# pids_of NAME DIR: every pid recorded for NAME (istiod may have replicas).
pids_of() { awk -v n="$1" '$1 == n { print $2 }' "$2/pids" 2>/dev/null; }

cmd_down() {
  [[ $# -eq 1 ]] || usage
  local dir=$1 name pid
  if [[ ! -f $dir/pids ]]; then
    log "nothing to stop in $dir"
    return 0
  fi
  dir=$(cd "$dir" && pwd)
  # istiod first, so it does not log the API server going away; then the API
  # server: stopped after etcd, its graceful shutdown can hang on its storage
  # and leave the process behind.
  for name in "${procs[@]}"; do
    for pid in $(pids_of "$name" "$dir"); do
      stop_pid "$name" "$pid" "$dir"
    done
  done
  remove_podnet_socket "$dir"
  rm -f "$dir/pids"
  log "stopped cluster in $dir"
}

# A unix socket's path has at most 107 bytes, and DIR can be longer (a test's
# t.TempDir() under the e2e run's TMPDIR). Then the socket lives in a short
# folder under /tmp, DIR/podnet.sock is a symlink to it, and down removes it.
podnet_socket() {
  local dir=$1 short
  if ((${#dir} + 12 <= 100)); then
    echo "$dir/podnet.sock"
    return
  fi
  short=$(mktemp -d /tmp/canary-podnet.XXXXXX)
  ln -sfn "$short/podnet.sock" "$dir/podnet.sock"
  echo "$short/podnet.sock"
}

remove_podnet_socket() {
  local dir=$1 target
  if [[ -L $dir/podnet.sock ]]; then
    target=$(readlink "$dir/podnet.sock")
    # Only a folder that podnet_socket made.
    [[ $target == /tmp/canary-podnet.*/podnet.sock ]] && rm -rf "${target%/podnet.sock}"
  fi
  rm -f "$dir/podnet.sock"
}

# wait_socket NAME PID PATH: wait for the unix socket PATH while PID lives.
wait_socket() {
  local name=$1 pid=$2 path=$3 deadline=$((SECONDS + ready_timeout))
  until [[ -S $path ]]; do
    alive "$pid" || { log "$name exited before it was ready"; return 1; }
    if ((SECONDS >= deadline)); then
      log "$name has no socket $path after ${ready_timeout}s"
      return 1
    fi
    sleep 0.05
  done
}

# wait_http NAME PID URL: wait for URL to answer 200 while PID lives.
wait_http() {
  local name=$1 pid=$2 url=$3 deadline=$((SECONDS + ready_timeout))
  until curl -ksf -o /dev/null --max-time 2 "$url"; do
    alive "$pid" || { log "$name exited before it was ready"; return 1; }
    if ((SECONDS >= deadline)); then
      log "$name not ready at $url after ${ready_timeout}s"
      return 1
    fi
    sleep 0.1
  done
}

# port_clash LOG: the process failed because another process took its port
# between free_ports and its start; `up` then tries again with new ports.
port_clash() { grep -q 'address already in use' "$1" 2>/dev/null; }

# gateway_api_crds DIR: writes the standard channel's Gateway API CRDs of
# the sigs.k8s.io/gateway-api version Istio's build requires to
# DIR/gateway-api-crds.yaml and prints that version. The channel's
# ValidatingAdmissionPolicy (vap_safeupgrades) is not a CRD and is left out.
gateway_api_crds() {
  local out=$1/gateway-api-crds.yaml version d f
  version=$(cd "$hack/tools/istio" && go list -m -f '{{.Version}}' sigs.k8s.io/gateway-api)
  [[ -n $version ]] || die "hack/tools/istio/go.mod requires no sigs.k8s.io/gateway-api"
  d=$(cd "$hack/tools/istio" && go mod download -json "sigs.k8s.io/gateway-api@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $d/config/crd/standard ]] || die "no config/crd/standard in sigs.k8s.io/gateway-api@$version (${d:-not downloaded})"
  : >"$out"
  for f in "$d"/config/crd/standard/gateway.networking.k8s.io_*.yaml; do
    [[ $f == *_vap_* ]] && continue
    { echo "---"; cat "$f"; } >>"$out"
  done
  echo "$version"
}

istio_crds() {
  local d
  d=$(cd "$root" && go list -m -f '{{.Dir}}' istio.io/api)
  if [[ -z $d ]]; then
    # Not in the module cache yet (fresh machine).
    (cd "$root" && go mod download istio.io/api) >&2
    d=$(cd "$root" && go list -m -f '{{.Dir}}' istio.io/api)
  fi
  [[ -f $d/kubernetes/customresourcedefinitions.gen.yaml ]] ||
    die "no kubernetes/customresourcedefinitions.gen.yaml in istio.io/api (${d:-not found})"
  echo "$d/kubernetes/customresourcedefinitions.gen.yaml"
}

write_kubeconfig() {
  local file=$1 server=$2 current=$3
  shift 3
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    echo "- name: canary-local"
    echo "  cluster:"
    echo "    server: $server"
    echo "    insecure-skip-tls-verify: true"
    echo "users:"
    local entry ctx user token
    for entry in "$@"; do
      read -r ctx user token <<<"$entry"
      echo "- name: $user"
      echo "  user:"
      echo "    token: $token"
    done
    echo "contexts:"
    for entry in "$@"; do
      read -r ctx user token <<<"$entry"
      echo "- name: $ctx"
      echo "  context:"
      echo "    cluster: canary-local"
      echo "    user: $user"
    done
    echo "current-context: $current"
  } >"$file"
}

cmd_up() {
  local dir="" crd_versions="" istiod="" gateway_api="" cluster_id=Kubernetes
  while [[ $# -gt 0 ]]; do
    case $1 in
      --cluster-id) [[ $# -ge 2 ]] || usage; cluster_id=$2; shift 2 ;;
      --crd-versions) [[ $# -ge 2 ]] || usage; crd_versions=$2; shift 2 ;;
      --crd-versions=*) crd_versions=${1#*=}; shift ;;
      --gateway-api) gateway_api=1; shift ;;
      --istiod) istiod=1; shift ;;
      -*) usage ;;
      *) [[ -z $dir ]] || usage; dir=$1; shift ;;
    esac
  done
  [[ -n $dir ]] || usage
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/pids ]]; then
    local name pid
    for name in "${procs[@]}"; do
      pid=$(pid_of "$name" "$dir")
      if [[ -n $pid ]] && alive "$pid" && ours "$pid" "$dir"; then
        die "a cluster is already running in $dir; run: $self down $dir"
      fi
    done
    rm -f "$dir/pids"
  fi
  local t0=$EPOCHREALTIME
  # Replicas started later read it too.
  echo "$cluster_id" >"$dir/cluster-id"

  # Let `run` stop clusters that its command started and could not stop.
  [[ -z ${CANARY_CLUSTER_REGISTRY:-} ]] || echo "$dir" >>"$CANARY_CLUSTER_REGISTRY"

  local bin crds tools=(etcd kube-apiserver kubectl istioctl)
  [[ -z $istiod ]] || tools+=(pilot-discovery)
  bin=$("$hack/build-tools.sh" "${tools[@]}" | tail -n 1)
  # podnet and kubelet are part of the main module: quick builds once cached.
  (cd "$root" && go build -o "$dir/podnet" ./hack/podnet && go build -o "$dir/kubelet" ./hack/kubelet) >&2
  crds=$(istio_crds)
  if [[ -n $crd_versions ]]; then
    log "networking.istio.io CRDs served only at $crd_versions"
    (cd "$root" && go run ./hack/crdversions -versions "$crd_versions" "$crds") >"$dir/istio-crds.yaml"
  else
    cp "$crds" "$dir/istio-crds.yaml"
  fi

  # Credentials: service-account signing key and static bearer tokens.
  mkdir -p "$dir/pki"
  openssl genrsa -out "$dir/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null
  local admin_token user_token istiod_token
  admin_token=$(openssl rand -hex 24)
  user_token=$(openssl rand -hex 24)
  # istiod's own user, so its requests stand apart in the audit log. The API
  # server reads the file once at start, so the user is always there.
  istiod_token=$(openssl rand -hex 24)
  # token,user,uid,"groups": canary-user gets only system:authenticated.
  printf '%s,canary-admin,canary-admin,"system:masters"\n%s,canary-user,canary-user\n%s,istiod,istiod,"system:masters"\n' \
    "$admin_token" "$user_token" "$istiod_token" >"$dir/tokens.csv"

  # One audit event per request (RequestReceived omitted), so tests can count
  # the API calls a command makes by user and user agent.
  cat >"$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
EOF

  # From here on a failure stops what was started and shows the logs.
  up_dir=$dir
  trap 'rc=$?; if ((rc != 0)); then tail_logs "$up_dir"; "$self" down "$up_dir" || true; fi' EXIT

  local attempt etcd_pid api_pid podnet_pid etcd_port peer_port api_port sock
  for attempt in 1 2 3; do
    read -r etcd_port peer_port api_port <<<"$(free_ports 3)"
    : >"$dir/pids"
    rm -rf "$dir/etcd"

    # The pod network, before the API server that dials through it. Its
    # command line names DIR (the binary is DIR/podnet), so `down` knows it
    # as ours even when the socket had to move to a shorter path.
    sock=$(podnet_socket "$dir")
    setsid "$dir/podnet" -socket "$sock" -cidr "$pod_cidr" \
      </dev/null >"$dir/podnet.log" 2>&1 &
    podnet_pid=$!
    echo "podnet $podnet_pid" >>"$dir/pids"
    wait_socket podnet "$podnet_pid" "$sock" || die "podnet did not start (log: $dir/podnet.log)"
    # Only the "cluster" egress (service, pod and node proxy, webhooks,
    # aggregated APIs) goes through podnet; etcd and the API server's
    # connections to itself stay direct.
    cat >"$dir/egress-selector.yaml" <<EOF
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: $sock
EOF

    # setsid: a Ctrl-C in the terminal must not reach the servers directly;
    # `down` stops them in the right order. Output goes to files so that a
    # caller reading our stdout (BIN=$(...), exec.Cmd.Output) is not held open.
    setsid "$bin/etcd" --name default --data-dir "$dir/etcd" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" \
      --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-cluster "default=http://127.0.0.1:$peer_port" \
      --unsafe-no-fsync --heartbeat-interval 10 --election-timeout 100 \
      </dev/null >"$dir/etcd.log" 2>&1 &
    etcd_pid=$!
    echo "etcd $etcd_pid" >>"$dir/pids"
    if ! wait_http etcd "$etcd_pid" "http://127.0.0.1:$etcd_port/health"; then
      if port_clash "$dir/etcd.log" && ((attempt < 3)); then
        log "port taken, retrying"; "$self" down "$dir" 2>/dev/null; continue
      fi
      die "etcd did not start (log: $dir/etcd.log)"
    fi

    # --endpoint-reconciler-type none: the default reconciler would write
    # 127.0.0.1 into the kubernetes Endpoints, which validation rejects.
    # ServiceAccount admission is off: it rejects pods in namespaces without
    # a "default" service account, and no controller here creates one. Tests
    # create Pending pods directly to stand in for a Deployment's pods.
    setsid "$bin/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:$etcd_port" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
      --secure-port "$api_port" --cert-dir "$dir/pki" \
      --authorization-mode RBAC \
      --token-auth-file "$dir/tokens.csv" \
      --service-account-issuer https://kubernetes.default.svc.cluster.local \
      --service-account-key-file "$dir/pki/sa.pub" \
      --service-account-signing-key-file "$dir/pki/sa.key" \
      --service-cluster-ip-range 10.0.0.0/24 \
      --endpoint-reconciler-type none \
      --disable-admission-plugins ServiceAccount \
      --audit-policy-file "$dir/audit-policy.yaml" \
      --audit-log-path "$dir/audit.log" \
      --egress-selector-config-file "$dir/egress-selector.yaml" \
      </dev/null >"$dir/kube-apiserver.log" 2>&1 &
    api_pid=$!
    echo "kube-apiserver $api_pid" >>"$dir/pids"
    if ! wait_http kube-apiserver "$api_pid" "https://127.0.0.1:$api_port/readyz"; then
      if port_clash "$dir/kube-apiserver.log" && ((attempt < 3)); then
        log "port taken, retrying"; "$self" down "$dir" 2>/dev/null; continue
      fi
      die "kube-apiserver did not become ready (log: $dir/kube-apiserver.log)"
    fi
    break
  done
  local server=https://127.0.0.1:$api_port
  log "etcd (pid $etcd_pid) on :$etcd_port, podnet (pid $podnet_pid) on $sock, kube-apiserver (pid $api_pid) on $server, ready after $(since "$t0")s"

  write_kubeconfig "$dir/kubeconfig" "$server" admin \
    "admin canary-admin $admin_token" "user canary-user $user_token"
  write_kubeconfig "$dir/user.kubeconfig" "$server" user \
    "user canary-user $user_token"

  local kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
  "${kubectl[@]}" apply --server-side -f "$dir/istio-crds.yaml" >"$dir/crds-apply.log"
  local gateway_api_version=""
  if [[ -n $gateway_api ]]; then
    gateway_api_version=$(gateway_api_crds "$dir")
    "${kubectl[@]}" apply --server-side -f "$dir/gateway-api-crds.yaml" >>"$dir/crds-apply.log"
  fi
  # A CRD the API server has not given a status yet makes `kubectl wait`
  # fail at once instead of waiting: try again, bounded.
  local tries=0
  until "${kubectl[@]}" wait --for condition=established --timeout=60s crd --all >>"$dir/crds-apply.log" 2>&1; do
    tries=$((tries + 1))
    if [[ $tries -ge 10 ]]; then
      tail -5 "$dir/crds-apply.log" >&2
      die "the Istio CRDs did not become established"
    fi
    sleep 0.5
  done
  "${kubectl[@]}" create namespace istio-system >/dev/null
  log "Istio CRDs${gateway_api_version:+ and Gateway API $gateway_api_version CRDs} installed after $(since "$t0")s"
  start_kubelet "$dir" "$bin"

  # start_istiod sets these.
  local istiod_http="" istiod_xds="" istiod_monitoring=""
  [[ -z $istiod ]] || start_istiod "$dir" "$bin" "$server" "$istiod_token"

  local var
  {
    echo "# Written by hack/cluster.sh up; source it to use this cluster."
    for var in \
      "KUBECONFIG=$dir/kubeconfig" \
      "CANARY_E2E_KUBECONFIG=$dir/kubeconfig" \
      "CANARY_E2E_USER_KUBECONFIG=$dir/user.kubeconfig" \
      "CANARY_E2E_KUBECTL=$bin/kubectl" \
      "CANARY_E2E_BIN=$bin" \
      "CANARY_E2E_SERVER=$server" \
      "CANARY_E2E_DIR=$dir" \
      "CANARY_E2E_AUDIT_LOG=$dir/audit.log" \
      "CANARY_E2E_ETCD=http://127.0.0.1:$etcd_port" \
      "CANARY_E2E_CRD_VERSIONS=$crd_versions" \
      "CANARY_E2E_GATEWAY_API=$gateway_api_version" \
      "CANARY_E2E_CLUSTER_SH=$self" \
      "CANARY_E2E_ISTIOCTL=$bin/istioctl" \
      "CANARY_E2E_ISTIOD=$istiod" \
      "CANARY_E2E_ISTIOD_HTTP=$istiod_http" \
      "CANARY_E2E_ISTIOD_XDS=$istiod_xds" \
      "CANARY_E2E_ISTIOD_MONITORING=$istiod_monitoring"; do
      printf 'export %s=%q\n' "${var%%=*}" "${var#*=}"
    done
  } >"$dir/env"

  log "up in $(since "$t0")s; source $dir/env"
  trap - EXIT
  echo "$dir/env"
}

# start_kubelet DIR BIN runs the stand-in kubelet on a free 127.0.0.1 port and
# registers Node local-node at 10.244.0.1 with that kubelet port, so that
# the API server's pods/portforward reaches it through podnet; it connects a
# forwarded port of any pod to 127.0.0.1:PORT.
start_kubelet() {
  local dir=$1 bin=$2 attempt pid port
  local kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
  for attempt in 1 2 3; do
    port=$(free_ports 1)
    setsid "$dir/kubelet" -listen "127.0.0.1:$port" </dev/null >"$dir/kubelet.log" 2>&1 &
    pid=$!
    echo "kubelet $pid" >>"$dir/pids"
    wait_http kubelet "$pid" "https://127.0.0.1:$port/healthz" && break
    if port_clash "$dir/kubelet.log" && ((attempt < 3)); then
      log "port taken, retrying the kubelet"; stop_pid kubelet "$pid" "$dir"; continue
    fi
    die "the kubelet did not start (log: $dir/kubelet.log)"
  done
  "${kubectl[@]}" create -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata: {name: $node_name}
EOF
  "${kubectl[@]}" patch node "$node_name" --subresource=status --type=merge -p \
    "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$node_ip\"}],\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":$port}}}}" >/dev/null
  log "kubelet (pid $pid) on 127.0.0.1:$port, Node $node_name at $node_ip"
}

# start_istiod DIR BIN SERVER TOKEN [NAME IP] runs pilot-discovery against
# the cluster as user istiod, every listener on a free 127.0.0.1 port, waits
# until it is ready, and registers it the way a cluster would have it (Pod
# NAME with pod IP IP, the Service istiod, an EndpointSlice NAME), so that the
# API server's proxy reaches it through podnet. The first replica is
# istiod-local (10.244.0.2) and creates the Service; `replica` adds others.
# Sets istiod_http, istiod_xds and istiod_monitoring (host:port) of the
# caller.
start_istiod() {
  local dir=$1 bin=$2 server=$3 token=$4 name=${5:-istiod-local} pod_ip=${6:-$istiod_pod_ip} t0=$EPOCHREALTIME
  local kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
  local attempt pid p_http p_grpc p_mon p_https p_ctrlz cluster_id
  local work=$dir/istiod logfile=$dir/istiod.log
  cluster_id=$(cat "$dir/cluster-id" 2>/dev/null || echo Kubernetes)
  if [[ $name != istiod-local ]]; then
    work=$dir/$name logfile=$dir/$name.log
  fi
  write_kubeconfig "$dir/istiod.kubeconfig" "$server" istiod "istiod istiod $token"
  mkdir -p "$work"
  for attempt in 1 2 3; do
    read -r p_http p_grpc p_mon p_https p_ctrlz <<<"$(free_ports 5)"
    # The working folder is DIR/istiod: istiod looks for its mounted files
    # (./etc/istio/config/mesh, ./etc/cacerts, ./var/lib/istio/inject, ...)
    # relative to it, finds none, and uses its defaults: the default mesh
    # config, a self-signed CA (Secret istio-ca-secret), no sidecar
    # injection. No listener on a fixed port or beyond loopback, so that
    # clusters can run side by side: the secure xDS port (15012) is off; the
    # webhook port (15017) and ControlZ (9876) move to free ports. The
    # environment is the part of what Istio's chart gives the pod that
    # istiod needs to find itself.
    (cd "$work" && exec env -u KUBECONFIG \
      POD_NAMESPACE=istio-system POD_NAME="$name" REVISION=default CLUSTER_ID="$cluster_id" \
      setsid "$bin/pilot-discovery" discovery \
      --kubeconfig "$dir/istiod.kubeconfig" \
      --httpAddr "127.0.0.1:$p_http" \
      --grpcAddr "127.0.0.1:$p_grpc" \
      --secureGRPCAddr "" \
      --monitoringAddr "127.0.0.1:$p_mon" \
      --httpsAddr "127.0.0.1:$p_https" \
      --ctrlz_address 127.0.0.1 --ctrlz_port "$p_ctrlz" \
      --domain cluster.local \
      --shutdownDuration 1s) </dev/null >"$logfile" 2>&1 &
    pid=$!
    # The third field names the replica, for `replica --stop`.
    echo "istiod $pid $name" >>"$dir/pids"
    if ! wait_http istiod "$pid" "http://127.0.0.1:$p_http/ready"; then
      if port_clash "$logfile" && ((attempt < 3)); then
        log "port taken, retrying istiod"; stop_pid istiod "$pid" "$dir"; continue
      fi
      die "istiod did not become ready (log: $logfile)"
    fi
    break
  done
  log "istiod $name (pid $pid) on 127.0.0.1:$p_http (http), :$p_grpc (xDS), :$p_mon (monitoring), ready after $(since "$t0")s"

  # The objects of a real install, pointing at the process: a pod IP from
  # the pod network, and the real loopback ports in the EndpointSlice (the
  # Service keeps Istio's port numbers and names). There is no endpointslice
  # controller, so the slice is written here; the API server's proxy takes
  # an endpoint whose targetRef pod has that IP in status.podIPs.
  {
    cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: istio-system
  labels: {app: istiod, istio: pilot}
spec:
  nodeName: $node_name
  containers:
  - name: discovery
    image: local/pilot-discovery
    env:
    - {name: CLUSTER_ID, value: $cluster_id}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name
  namespace: istio-system
  labels:
    kubernetes.io/service-name: istiod
    app: istiod
addressType: IPv4
endpoints:
- addresses: [$pod_ip]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, namespace: istio-system, name: $name}
ports:
- {name: grpc-xds, port: $p_grpc, protocol: TCP}
- {name: http-monitoring, port: $p_mon, protocol: TCP}
- {name: http-debug, port: $p_http, protocol: TCP}
EOF
    # Replicas share the first one's Service (its targetPorts are that
    # replica's; the proxy goes by each EndpointSlice's ports).
    if [[ $name == istiod-local ]]; then
      cat <<EOF
---
apiVersion: v1
kind: Service
metadata:
  name: istiod
  namespace: istio-system
  labels: {app: istiod, istio: pilot}
spec:
  selector: {app: istiod}
  ports:
  - {name: grpc-xds, port: 15010, targetPort: $p_grpc, protocol: TCP}
  - {name: http-monitoring, port: 15014, targetPort: $p_mon, protocol: TCP}
  - {name: http-debug, port: 8080, targetPort: $p_http, protocol: TCP}
EOF
    fi
  } >"$dir/$name-objects.yaml"
  "${kubectl[@]}" apply -f "$dir/$name-objects.yaml" >/dev/null
  "${kubectl[@]}" patch pod "$name" -n istio-system --subresource=status --type=merge \
    -p "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$pod_ip\",\"podIPs\":[{\"ip\":\"$pod_ip\"}]}}" >/dev/null

  # Bounded: the API server's proxy reaches istiod's monitoring port through
  # podnet (istiod answers debug requests from loopback without a token).
  local path=/api/v1/namespaces/istio-system/pods/http:$name:$p_mon/proxy/debug/syncz
  [[ $name == istiod-local ]] && path=/api/v1/namespaces/istio-system/services/http:istiod:15014/proxy/debug/syncz
  local deadline=$((SECONDS + ready_timeout)) out=""
  until out=$("${kubectl[@]}" get --raw "$path" 2>&1) && [[ $out == [\[{]* ]]; do
    if ((SECONDS >= deadline)); then
      log "the API server's service proxy does not reach istiod after ${ready_timeout}s: ${out:0:300}"
      die "istiod is not reachable through the service proxy (logs: $dir/podnet.log, $dir/kube-apiserver.log)"
    fi
    sleep 0.2
  done
  log "istiod $name reachable through the API server's proxy after $(since "$t0")s"

  istiod_http=127.0.0.1:$p_http
  istiod_xds=127.0.0.1:$p_grpc
  istiod_monitoring=127.0.0.1:$p_mon
}

# cmd_replica DIR NAME starts another istiod replica beside the first one of
# the cluster in DIR and prints its addresses; --stop DIR NAME removes it
# (EndpointSlice and Pod first, so no proxy is sent to it, then the process).
cmd_replica() {
  local stop=""
  if [[ ${1:-} == --stop ]]; then
    stop=1
    shift
  fi
  [[ $# -eq 2 ]] || usage
  local dir=$1 name=$2 bin pid
  [[ -f $dir/env ]] || die "no cluster in $dir"
  dir=$(cd "$dir" && pwd)
  [[ -n $(pids_of istiod "$dir") ]] || die "the cluster in $dir runs no istiod; start it with up --istiod"
  [[ $name =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ && $name != istiod-local ]] || die "replica name $name: give a DNS label other than istiod-local"
  bin=$("$hack/build-tools.sh" kubectl pilot-discovery | tail -n 1)
  local kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
  pid=$(awk -v n="$name" '$1 == "istiod" && $3 == n { print $2 }' "$dir/pids")
  if [[ -n $stop ]]; then
    "${kubectl[@]}" delete -n istio-system endpointslice "$name" --ignore-not-found >/dev/null
    "${kubectl[@]}" delete -n istio-system pod "$name" --ignore-not-found --wait=false >/dev/null
    [[ -z $pid ]] || stop_pid istiod "$pid" "$dir"
    log "stopped istiod replica $name"
    return 0
  fi
  [[ -z $pid ]] || die "istiod replica $name already runs (pid $pid)"
  local server token replicas
  server=$(sed -n 's/^export CANARY_E2E_SERVER=//p' "$dir/env")
  token=$(awk -F, '$2 == "istiod" { print $1 }' "$dir/tokens.csv")
  # Pod IPs follow the first replica's: 10.244.0.3, .4, ...
  replicas=$(pids_of istiod "$dir" | wc -l)
  local istiod_http="" istiod_xds="" istiod_monitoring=""
  start_istiod "$dir" "$bin" "$server" "$token" "$name" "10.244.0.$((2 + replicas))"
  echo "CANARY_E2E_ISTIOD_HTTP=$istiod_http CANARY_E2E_ISTIOD_XDS=$istiod_xds CANARY_E2E_ISTIOD_MONITORING=$istiod_monitoring"
}

# run_cleanup and on_signal are cmd_run's traps; cmd_run sets run_dir and child.

# Whatever ends `run` stops the command's processes, then every cluster started
# under this run (the command's own first, then ours), and removes the folder.
# The exit code stays the command's; a failed stop turns a 0 into 1. A second
# Ctrl-C must not cut the (bounded) cleanup short.
# shellcheck disable=SC2317  # called by trap
run_cleanup() {
  local rc=$? d p nested=()
  trap - EXIT
  trap '' INT TERM
  if [[ -n $child ]] && alive "$child"; then
    for p in $(descendants "$child"); do kill -KILL "$p" 2>/dev/null || true; done
  fi
  [[ -f $run_dir/clusters ]] && mapfile -t nested < <(tac "$run_dir/clusters")
  for d in "${nested[@]}"; do
    [[ -f $d/pids ]] || continue # already stopped by the command
    "$self" down "$d" || rc=$((rc ? rc : 1))
  done
  "$self" down "$run_dir" || rc=$((rc ? rc : 1))
  if [[ ${CANARY_CLUSTER_KEEP:-} == 1 ]]; then
    log "kept $run_dir"
  else
    rm -rf "$run_dir"
  fi
  exit "$rc"
}

# A signal is passed on to the command and everything below it (as a
# terminal's Ctrl-C would be; `go test` does not pass it on to the test
# binary itself), with a bounded wait before the cleanup kills them.
# shellcheck disable=SC2317  # called by trap
on_signal() {
  local sig=$1 code=$2 p
  trap '' INT TERM
  log "got SIG$sig; stopping"
  if [[ -n $child ]] && alive "$child"; then
    for p in $(descendants "$child"); do kill -"$sig" "$p" 2>/dev/null || true; done
    wait_gone "$child" "$child_timeout" || log "command did not exit in ${child_timeout}s"
  fi
  exit "$code"
}

cmd_run() {
  local up_args=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --crd-versions) [[ $# -ge 2 ]] || usage; up_args+=("$1" "$2"); shift 2 ;;
      --crd-versions=*) up_args+=("$1"); shift ;;
      --gateway-api | --istiod) up_args+=("$1"); shift ;;
      --) shift; break ;;
      *) usage ;;
    esac
  done
  [[ $# -gt 0 ]] || usage

  # A shell started with SIGINT ignored (any background job of a script)
  # cannot trap it, so SIGINT would neither stop the command nor the cluster.
  # Start again with the default disposition so the trap below works.
  local ignored
  ignored=$(awk '/^SigIgn:/ { print $2 }' /proc/$$/status)
  if (((16#$ignored >> 1) & 1)) && [[ -z ${CANARY_CLUSTER_REEXEC:-} ]]; then
    CANARY_CLUSTER_REEXEC=1 exec env --default-signal=INT,QUIT "$self" run "${up_args[@]}" -- "$@"
  fi
  unset CANARY_CLUSTER_REEXEC

  run_dir=$(mktemp -d "${TMPDIR:-/tmp}/canary-cluster.XXXXXX")
  child=""

  trap run_cleanup EXIT
  trap 'on_signal INT 130' INT
  trap 'on_signal TERM 143' TERM

  # Children run in the background so that a signal to this script is handled
  # at once instead of after the child exits; `env --default-signal` undoes
  # the SIGINT/SIGQUIT ignore that bash gives background jobs, and fd 3 hands
  # them our stdin (bash would give them /dev/null).
  exec 3<&0
  env --default-signal=INT,QUIT "$self" up "$run_dir" "${up_args[@]}" </dev/null >/dev/null &
  child=$!
  wait "$child" || exit $?
  # shellcheck source=/dev/null
  source "$run_dir/env"
  # Clusters that the command starts with `up` register here (see cmd_up).
  export CANARY_CLUSTER_REGISTRY=$run_dir/clusters

  env --default-signal=INT,QUIT "$@" <&3 3<&- &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  exit "$rc"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  run) cmd_run "$@" ;;
  replica) cmd_replica "$@" ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
