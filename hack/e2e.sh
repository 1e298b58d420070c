#!/usr/bin/env bash
# Runs the end-to-end tests (./pkg/e2e/..., build tag e2e) against a fresh local
# cluster from hack/cluster.sh. Extra arguments go to `go test`:
#
#   hack/e2e.sh                 # everything
#   hack/e2e.sh -run TestX -v   # one test, verbose
#
# The tests see the variables of hack/cluster.sh's DIR/env (CANARY_E2E_*,
# KUBECONFIG), plus:
#   CANARY_E2E_CLUSTER_SH  absolute path of hack/cluster.sh, to start another
#                          cluster (e.g. `up DIR --crd-versions v1beta1,v1alpha3`)
#   CANARY_E2E_PLUGIN      the kubectl-canary binary under test
# and PATH starts with the plugin's folder and the built kubectl's folder, so
# `kubectl canary ...` runs the plugin through kubectl's plugin mechanism.
set -euo pipefail

hack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$hack/.." && pwd)

bin=$("$hack/build-tools.sh" | tail -n 1)

plugin_dir=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-canary-e2e.XXXXXX")
trap 'rm -rf "$plugin_dir"' EXIT
echo "e2e: building kubectl-canary" >&2
(cd "$root" && go build -o "$plugin_dir/kubectl-canary" ./cmd/kubectl-canary)

export PATH=$plugin_dir:$bin:$PATH
export CANARY_E2E_CLUSTER_SH=$hack/cluster.sh
export CANARY_E2E_PLUGIN=$plugin_dir/kubectl-canary

cd "$root"
# In the background, with the default SIGINT restored (bash makes background
# jobs ignore it), so that a signal to this script is passed on at once and
# cluster.sh still stops the cluster before we remove the plugin folder.
env --default-signal=INT,QUIT "$hack/cluster.sh" run -- \
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
