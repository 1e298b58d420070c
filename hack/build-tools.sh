#!/usr/bin/env bash
# Builds the binaries the e2e harness and `make verify-krew` run from the
# pinned tools modules under hack/tools/, and prints a folder that holds the
# ones asked for as the last line on stdout:
#
#   BIN=$(hack/build-tools.sh)                       # every tool
#   BIN=$(hack/build-tools.sh etcd kube-apiserver)   # only these
#
# The tools: etcd, kube-apiserver, kubectl, krew, validate-krew-manifest,
# pilot-discovery (run as istiod by `cluster.sh up --istiod`), istioctl and
# prometheus (the analysis e2e tests' server).
#
# Each binary is cached on its own in hack/bin/<name>-<key>/, where <key>
# hashes its tools module's go.mod and go.sum, its build line, the Go version
# and this script's recipe version: a binary is rebuilt only when its pin
# changes, and a second run returns at once (CANARY_TOOLS_CACHE=DIR puts the
# cache under DIR instead of hack/bin). The printed folder,
# hack/bin/set-<key>/, links the binaries asked for.
#
# Modules build concurrently (one module's downloads overlap another's
# compiles); the binaries of one module build one after the other, as they
# share most packages. Build progress goes to stderr. Needs only Go: modules
# come through the module proxy on the first run.
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
recipe=2

# One line per binary: output name, tools module (a folder under hack/tools/),
# main package, build tags. etcd has its own module because k8s.io/kubernetes
# requires a newer etcd server, which would override the etcd pin in a shared
# module; Istio and Prometheus have their own because they require other
# Kubernetes libraries. Prometheus is built without its service discovery
# plugins (remove_all_sd): the tests scrape static targets, and the cloud SDKs
# would double its build time.
tools=(
  "etcd           etcd go.etcd.io/etcd/server/v3 -"
  "kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver -"
  "kubectl        kube k8s.io/kubernetes/cmd/kubectl -"
  "krew           krew sigs.k8s.io/krew/cmd/krew -"
  "validate-krew-manifest krew sigs.k8s.io/krew/cmd/validate-krew-manifest -"
  "pilot-discovery istio istio.io/istio/pilot/cmd/pilot-discovery -"
  "istioctl       istio istio.io/istio/istioctl/cmd/istioctl -"
  "prometheus     prometheus github.com/prometheus/prometheus/cmd/prometheus remove_all_sd"
)

log() { echo "build-tools: $*" >&2; }
die() { log "$*"; exit 1; }

# The tools modules must not be affected by a go.work or by GOFLAGS from the
# caller's environment (e.g. -mod=vendor); cgo is off so the binaries are
# static and no C toolchain is needed.
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0

tool_line() {
  local line
  for line in "${tools[@]}"; do
    [[ ${line%% *} == "$1" ]] && { echo "$line"; return 0; }
  done
  return 1
}

# The tools asked for, in the order of the table above.
wanted=()
if [[ $# -eq 0 ]]; then
  for line in "${tools[@]}"; do wanted+=("${line%% *}"); done
else
  for name in "$@"; do
    tool_line "$name" >/dev/null || die "unknown tool $name; known: $(printf '%s ' "${tools[@]%% *}")"
  done
  for line in "${tools[@]}"; do
    for name in "$@"; do
      [[ ${line%% *} == "$name" ]] && { wanted+=("$name"); break; }
    done
  done
fi

go_env=$(go env GOVERSION GOOS GOARCH)

# cache_key NAME: what the binary NAME is built from.
cache_key() {
  local line name mod pkg tags
  line=$(tool_line "$1")
  read -r name mod pkg tags <<<"$line"
  {
    echo "recipe $recipe"
    echo "$go_env"
    echo "$name $mod $pkg $tags"
    echo "== go.mod"
    cat "$tools_dir/$mod/go.mod"
    echo "== go.sum"
    cat "$tools_dir/$mod/go.sum"
  } | sha256sum | cut -c1-16
}

# ldflags MODULE: version stamps, so that the binaries report the release
# they were built from rather than a development placeholder.
ldflags() {
  local flags="-s -w" version minor pkg info dir kv
  case $1 in
  kube)
    # Without these kube-apiserver and kubectl say v0.0.0-master, which
    # confuses version checks.
    version=$(cd "$tools_dir/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
    minor=${version#v1.}
    minor=${minor%%.*}
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1"
      flags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    ;;
  krew)
    # Unstamped, `kubectl krew version` calls itself a development build.
    version=$(cd "$tools_dir/krew" && go list -m -f '{{.Version}}' sigs.k8s.io/krew)
    flags+=" -X sigs.k8s.io/krew/internal/version.gitTag=$version"
    ;;
  istio)
    # As Istio's Makefile stamps a build between releases: version X.Y-dev
    # from the module's VERSION file, the commit from the pseudo-version.
    info=$(cd "$tools_dir/istio" && go mod download istio.io/istio && go list -m -f '{{.Dir}} {{.Version}}' istio.io/istio)
    read -r dir version <<<"$info"
    for kv in "buildVersion=$(cat "$dir/VERSION")-dev" "buildGitRevision=${version##*-}" \
      buildStatus=Clean "buildTag=$version" buildHub=local "buildOS=$(go env GOOS)" "buildArch=$(go env GOARCH)"; do
      flags+=" -X istio.io/istio/pkg/version.$kv"
    done
    ;;
  prometheus)
    # `prometheus --version` and its build_info metric show the release.
    info=$(cd "$tools_dir/prometheus" && go mod download github.com/prometheus/prometheus && go list -m -f '{{.Dir}}' github.com/prometheus/prometheus)
    flags+=" -X github.com/prometheus/common/version.Version=$(cat "$info/VERSION")"
    flags+=" -X github.com/prometheus/common/version.Branch=release"
    ;;
  esac
  echo "$flags"
}

# build NAME: the folder hack/bin/NAME-<key>/ with the binary NAME in it.
# A finished build is renamed into place atomically, so an existing folder
# is always complete; a lock per binary makes a second caller (e.g. two test
# runs started at once) wait instead of compiling the same thing again.
build() {
  local name=$1 line mod pkg tags key out tmp t0 lock
  line=$(tool_line "$name")
  read -r _ mod pkg tags <<<"$line"
  key=$(cache_key "$name")
  out=$bin_root/$name-$key
  [[ -d $out ]] && return 0
  exec {lock}>"$bin_root/.lock-$name"
  flock "$lock"
  if [[ ! -d $out ]]; then
    tmp=$(mktemp -d "$bin_root/.tmp-$name-$key.XXXXXX")
    log "building $name from $pkg (hack/tools/$mod) ..."
    t0=$SECONDS
    [[ $tags == - ]] && tags=""
    # go's own output goes to stderr so that stdout carries only the folder.
    if ! (cd "$tools_dir/$mod" && go build -trimpath -tags "$tags" -ldflags "$(ldflags "$mod")" -o "$tmp/$name" "$pkg") >&2; then
      rm -rf "$tmp"
      die "building $name failed"
    fi
    chmod 755 "$tmp" # mktemp made it 0700
    mv -T "$tmp" "$out"
    log "built $name in $((SECONDS - t0))s"
  fi
  exec {lock}>&-
}

# build_module MODULE: the wanted binaries of one tools module, in turn.
build_module() {
  local mod=$1 name line
  for name in "${wanted[@]}"; do
    line=$(tool_line "$name")
    read -r _ line _ <<<"$line"
    [[ $line == "$mod" ]] && build "$name"
  done
  return 0
}

start=$SECONDS
modules=()
for name in "${wanted[@]}"; do
  line=$(tool_line "$name")
  read -r _ mod _ <<<"$line"
  [[ " ${modules[*]} " == *" $mod "* ]] || modules+=("$mod")
done
pids=()
for mod in "${modules[@]}"; do
  build_module "$mod" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
[[ $failed == 0 ]] || die "some tools did not build (see above)"
((SECONDS - start < 2)) || log "tools built in $((SECONDS - start))s"

# The folder of links to the wanted binaries, named after their keys.
links=()
for name in "${wanted[@]}"; do
  links+=("$name-$(cache_key "$name")")
done
set_dir=$bin_root/set-$(printf '%s\n' "${links[@]}" | sha256sum | cut -c1-16)
if [[ ! -d $set_dir ]]; then
  tmp=$(mktemp -d "$bin_root/.tmp-set.XXXXXX")
  for link in "${links[@]}"; do
    ln -s "../$link/${link%-*}" "$tmp/${link%-*}"
  done
  chmod 755 "$tmp"
  # Another caller may have made the same folder meanwhile: theirs is the same.
  mv -T "$tmp" "$set_dir" 2>/dev/null || rm -rf "$tmp"
fi
echo "$set_dir"
