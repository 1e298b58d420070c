#!/usr/bin/env bash
# Builds the binaries the e2e harness and `make verify-krew` run (etcd,
# kube-apiserver, kubectl, krew, validate-krew-manifest, pilot-discovery (run
# as istiod by `cluster.sh up --istiod`), istioctl) from the pinned tools
# modules under hack/tools/ and prints the folder that holds them as the last
# line on stdout:
#
#   BIN=$(hack/build-tools.sh)
#
# The folder is hack/bin/<key>/, where <key> hashes the tools modules' go.mod
# and go.sum (plus the Go version and this script's recipe version), so the
# binaries are rebuilt only when a pin changes and a second run returns at
# once (CANARY_TOOLS_CACHE=DIR puts <key>/ under DIR instead of hack/bin).
# Build progress goes to stderr. Needs only Go: modules come through the
# module proxy on the first run.
set -euo pipefail

hack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools_dir=$hack/tools
# CANARY_TOOLS_CACHE moves the cache, e.g. to share it between clones.
bin_root=${CANARY_TOOLS_CACHE:-$hack/bin}
mkdir -p "$bin_root"
bin_root=$(cd "$bin_root" && pwd) # callers get an absolute path

# Go's default install folder, for shells whose PATH lacks it.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

# Bump when the build commands below change in a way that changes the output,
# so that existing caches are not reused.
recipe=1

# One line per binary: output name, tools module (a folder under hack/tools/),
# main package. etcd has its own module because k8s.io/kubernetes requires a
# newer etcd server, which would override the etcd pin in a shared module;
# Istio has its own because it requires other Kubernetes libraries.
tools=(
  "etcd           etcd go.etcd.io/etcd/server/v3"
  "kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver"
  "kubectl        kube k8s.io/kubernetes/cmd/kubectl"
  "krew           krew sigs.k8s.io/krew/cmd/krew"
  "validate-krew-manifest krew sigs.k8s.io/krew/cmd/validate-krew-manifest"
  "pilot-discovery istio istio.io/istio/pilot/cmd/pilot-discovery"
  "istioctl       istio istio.io/istio/istioctl/cmd/istioctl"
)

log() { echo "build-tools: $*" >&2; }

# The tools modules must not be affected by a go.work or by GOFLAGS from the
# caller's environment (e.g. -mod=vendor); cgo is off so the binaries are
# static and no C toolchain is needed.
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0

modules() {
  local line name mod pkg
  for line in "${tools[@]}"; do
    read -r name mod pkg <<<"$line"
    echo "$mod"
  done | sort -u
}

cache_key() {
  local mod
  {
    echo "recipe $recipe"
    go env GOVERSION GOOS GOARCH
    printf '%s\n' "${tools[@]}"
    for mod in $(modules); do
      echo "== $mod/go.mod"
      cat "$tools_dir/$mod/go.mod"
      echo "== $mod/go.sum"
      cat "$tools_dir/$mod/go.sum"
    done
  } | sha256sum | cut -c1-16
}

key=$(cache_key)
out=$bin_root/$key

# Fast path: a finished build is renamed into place atomically, so an existing
# folder is always complete.
if [[ -d $out ]]; then
  echo "$out"
  exit 0
fi

# Serialize concurrent builds (e.g. two test runs started at once) so that the
# second waits for the first instead of compiling the same thing again.
exec 9>"$bin_root/.lock"
flock 9
if [[ -d $out ]]; then
  echo "$out"
  exit 0
fi

tmp=$(mktemp -d "$bin_root/.tmp-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# kube-apiserver and kubectl report the version they were stamped with;
# without this they say v0.0.0-master, which confuses version checks.
kube_version=$(cd "$tools_dir/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
kube_minor=${kube_version#v1.}
kube_minor=${kube_minor%%.*}
kube_ldflags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1"
  kube_ldflags+=" -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done

# krew stamped with its release says so in `kubectl krew version`; unstamped
# it calls itself a development build.
krew_version=$(cd "$tools_dir/krew" && go list -m -f '{{.Version}}' sigs.k8s.io/krew)
krew_ldflags=" -X sigs.k8s.io/krew/internal/version.gitTag=$krew_version"

# Istio's binaries stamped the way its Makefile stamps a build between
# releases: version X.Y-dev from the module's VERSION file, the commit from
# the pseudo-version. Unstamped, istiod and istioctl report "unknown".
istio_info=$(cd "$tools_dir/istio" && go mod download istio.io/istio && go list -m -f '{{.Dir}} {{.Version}}' istio.io/istio)
read -r istio_dir istio_version <<<"$istio_info"
istio_ldflags=""
for kv in "buildVersion=$(cat "$istio_dir/VERSION")-dev" "buildGitRevision=${istio_version##*-}" \
  buildStatus=Clean "buildTag=$istio_version" buildHub=local "buildOS=$(go env GOOS)" "buildArch=$(go env GOARCH)"; do
  istio_ldflags+=" -X istio.io/istio/pkg/version.$kv"
done

start=$SECONDS
for line in "${tools[@]}"; do
  read -r name mod pkg <<<"$line"
  ldflags="-s -w"
  [[ $mod == kube ]] && ldflags+=$kube_ldflags
  [[ $mod == krew ]] && ldflags+=$krew_ldflags
  [[ $mod == istio ]] && ldflags+=$istio_ldflags
  log "building $name from $pkg (hack/tools/$mod) ..."
  t0=$SECONDS
  # go's own output goes to stderr so that stdout carries only the bin path.
  (cd "$tools_dir/$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/$name" "$pkg") >&2
  log "built $name in $((SECONDS - t0))s"
done

chmod 755 "$tmp"  # mktemp made it 0700
mv -T "$tmp" "$out"
trap - EXIT
log "all tools built in $((SECONDS - start))s into $out"
echo "$out"
