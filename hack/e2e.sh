#!/usr/bin/env bash
# Runs the end-to-end tests (./pkg/e2e/..., build tag e2e) against a fresh local
# cluster from hack/cluster.sh, with a real istiod and the Gateway API CRDs
# (`cluster.sh run --istiod --gateway-api`: the whole suite shares one; tests
# keep to namespaces of their own). Extra
# arguments go to `go test`:
#
#   hack/e2e.sh                 # everything
#   hack/e2e.sh -run TestX -v   # one test, verbose
#   hack/e2e.sh --tools-only    # only build the tools the suite runs
#
# The tests see the variables of hack/cluster.sh's DIR/env (CANARY_E2E_*,
# KUBECONFIG; CANARY_E2E_ISTIOD=1 and istiod's addresses among them), plus:
#   CANARY_E2E_CLUSTER_SH  absolute path of hack/cluster.sh, to start another
#                          cluster (e.g. `up DIR --crd-versions v1beta1,v1alpha3`)
#   CANARY_E2E_PLUGIN      the kubectl-canary binary under test
# and PATH starts with the plugin's folder and the built kubectl's folder, so
# `kubectl canary ...` runs the plugin through kubectl's plugin mechanism.
# TMPDIR is a folder removed at the end, even after an interrupted test.
# CANARY_CLUSTER_KEEP=1 keeps it (cluster logs, audit log) for a look.
set -euo pipefail

hack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Started with SIGINT ignored (as a background job of a script), bash could not
# trap it below: start again with the default disposition.
ignored=$(awk '/^SigIgn:/ { print $2 }' /proc/$$/status)
if (((16#$ignored >> 1) & 1)) && [[ -z ${CANARY_E2E_REEXEC:-} ]]; then
  CANARY_E2E_REEXEC=1 exec env --default-signal=INT,QUIT "$hack/e2e.sh" "$@"
fi
unset CANARY_E2E_REEXEC

# Go's default install folder, for shells whose PATH lacks it.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

root=$(cd "$hack/.." && pwd)

# Only what the suite runs (not krew): the cluster, istiod and istioctl, and
# Prometheus for the analysis tests (found on PATH as `prometheus`).
bin=$("$hack/build-tools.sh" etcd kube-apiserver kubectl pilot-discovery istioctl prometheus | tail -n 1)
# `e2e.sh --tools-only`: build them and stop (make check builds them while
# the unit tests run).
if [[ ${1:-} == --tools-only ]]; then
  echo "$bin"
  exit 0
fi

# One folder for everything this run leaves behind: the plugin binary, and as
# TMPDIR the cluster's folder and the tests' t.TempDir()s, which an
# interrupted test binary cannot remove itself.
work=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-canary-e2e.XXXXXX")
if [[ ${CANARY_CLUSTER_KEEP:-} == 1 ]]; then
  trap 'echo "e2e: kept $work" >&2' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
mkdir "$work/bin" "$work/tmp"
echo "e2e: building kubectl-canary" >&2
(cd "$root" && go build -o "$work/bin/kubectl-canary" ./cmd/kubectl-canary)

export PATH=$work/bin:$bin:$PATH
export TMPDIR=$work/tmp
export CANARY_E2E_CLUSTER_SH=$hack/cluster.sh
export CANARY_E2E_PLUGIN=$work/bin/kubectl-canary

cd "$root"
# In the background, with the default SIGINT restored (bash makes background
# jobs ignore it), so that a signal to this script is passed on at once and
# cluster.sh still stops the cluster before we remove the plugin folder.
env --default-signal=INT,QUIT "$hack/cluster.sh" run --istiod --gateway-api -- \
  go test -tags e2e -count=1 -timeout 30m ./pkg/e2e/... "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' INT
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM
while :; do
  rc=0
  wait "$pid" || rc=$?
  # wait also returns when one of our traps ran; go on until cluster.sh is gone.
  kill -0 "$pid" 2>/dev/null || break
done
exit "$rc"
