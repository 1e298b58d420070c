#!/usr/bin/env bash
# A throw-away Kubernetes control plane for the e2e tests: etcd and
# kube-apiserver on free 127.0.0.1 ports, with the Istio CRDs installed. There
# is no controller manager, scheduler or kubelet: objects are stored and served,
# nothing reconciles them.
#
#   hack/cluster.sh up DIR [--crd-versions LIST]
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
#         CANARY_E2E_CLUSTER_SH               this script
#       (Source it by a path with a slash: `source env` finds /usr/bin/env.)
#       Also in DIR: kubeconfig, user.kubeconfig, pids, audit.log, etcd.log,
#       kube-apiserver.log, tokens.csv, istio-crds.yaml (as applied).
#       --crd-versions v1beta1,v1alpha3 serves the networking.istio.io CRDs only
#       at those versions (the first one listed that a CRD has is its storage
#       version), like an older cluster. Namespace istio-system exists.
#       ServiceAccount admission is off, so pods can be created in any
#       namespace (they stay Pending: there are no nodes).
#   hack/cluster.sh down DIR
#       Stops that cluster: kube-apiserver first, then etcd, each by the pid in
#       DIR/pids, SIGKILL after a bounded wait. Idempotent.
#   hack/cluster.sh run [--crd-versions LIST] -- CMD ARGS...
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
ready_timeout=60   # etcd health, kube-apiserver /readyz (about 3 s here)
stop_timeout=10    # graceful shutdown before SIGKILL (about 1 s here)
child_timeout=15   # for CMD of `run` to exit after a forwarded signal

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
  for f in "$dir/etcd.log" "$dir/kube-apiserver.log"; do
    [[ -s $f ]] || continue
    log "last lines of $f:"
    tail -n 15 "$f" | sed 's/^/    /' >&2
  done
}

pid_of() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$2/pids" 2>/dev/null; }

cmd_down() {
  [[ $# -eq 1 ]] || usage
  local dir=$1 name pid
  if [[ ! -f $dir/pids ]]; then
    log "nothing to stop in $dir"
    return 0
  fi
  dir=$(cd "$dir" && pwd)
  # The API server first: stopped after etcd, its graceful shutdown can hang
  # on its storage and leave the process behind.
  for name in kube-apiserver etcd; do
    pid=$(pid_of "$name" "$dir")
    [[ -n $pid ]] && stop_pid "$name" "$pid" "$dir"
  done
  rm -f "$dir/pids"
  log "stopped cluster in $dir"
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
  local dir="" crd_versions=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --crd-versions) [[ $# -ge 2 ]] || usage; crd_versions=$2; shift 2 ;;
      --crd-versions=*) crd_versions=${1#*=}; shift ;;
      -*) usage ;;
      *) [[ -z $dir ]] || usage; dir=$1; shift ;;
    esac
  done
  [[ -n $dir ]] || usage
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/pids ]]; then
    local name pid
    for name in kube-apiserver etcd; do
      pid=$(pid_of "$name" "$dir")
      if [[ -n $pid ]] && alive "$pid" && ours "$pid" "$dir"; then
        die "a cluster is already running in $dir; run: $self down $dir"
      fi
    done
    rm -f "$dir/pids"
  fi
  local t0=$EPOCHREALTIME

  # Let `run` stop clusters that its command started and could not stop.
  [[ -z ${CANARY_CLUSTER_REGISTRY:-} ]] || echo "$dir" >>"$CANARY_CLUSTER_REGISTRY"

  local bin crds
  bin=$("$hack/build-tools.sh" | tail -n 1)
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
  local admin_token user_token
  admin_token=$(openssl rand -hex 24)
  user_token=$(openssl rand -hex 24)
  # token,user,uid,"groups": canary-user gets only system:authenticated.
  printf '%s,canary-admin,canary-admin,"system:masters"\n%s,canary-user,canary-user\n' \
    "$admin_token" "$user_token" >"$dir/tokens.csv"

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

  local attempt etcd_pid api_pid etcd_port peer_port api_port
  for attempt in 1 2 3; do
    read -r etcd_port peer_port api_port <<<"$(free_ports 3)"
    : >"$dir/pids"
    rm -rf "$dir/etcd"

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
  log "etcd (pid $etcd_pid) on :$etcd_port, kube-apiserver (pid $api_pid) on $server, ready after $(since "$t0")s"

  write_kubeconfig "$dir/kubeconfig" "$server" admin \
    "admin canary-admin $admin_token" "user canary-user $user_token"
  write_kubeconfig "$dir/user.kubeconfig" "$server" user \
    "user canary-user $user_token"

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
      "CANARY_E2E_CLUSTER_SH=$self"; do
      printf 'export %s=%q\n' "${var%%=*}" "${var#*=}"
    done
  } >"$dir/env"

  local kubectl=("$bin/kubectl" --kubeconfig "$dir/kubeconfig")
  "${kubectl[@]}" apply --server-side -f "$dir/istio-crds.yaml" >"$dir/crds-apply.log"
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
  log "Istio CRDs installed; up in $(since "$t0")s; source $dir/env"
  trap - EXIT
  echo "$dir/env"
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
  -h | --help | help) usage ;;
  *) usage ;;
esac
