#!/usr/bin/env bash
# Checks the Krew manifest plugins/canary.yaml and the archives in dist/ with
# krew's own tools, as `make verify-krew` (after `make dist krew-manifest`):
#
#  1. krew's validate-krew-manifest: apiVersion and kind, the plugin name
#     against the file name, a semantic version, sha256 sums, bin and files,
#     and selectors that each match a platform Krew supports and never overlap.
#     It runs with -skip-install, because its install step downloads the
#     release URLs, which exist only once the release is published (and this
#     machine reaches no web host); step 2 does that install from dist/.
#  2. For every archive in dist/: `kubectl krew install --manifest
#     --archive` into an empty KREW_ROOT, as that platform (KREW_OS and
#     KREW_ARCH, as the validator does). Krew checks the archive against the
#     manifest's sha256; the plugin, the completion helper and LICENSE must be
#     extracted and the plugin linked into KREW_ROOT/bin; the binaries must be
#     for that platform, CGO-free, -trimpath, and stamped with the version.
#  3. On this machine's platform, installed the same way (with a local plugin
#     index holding the manifest, which krew's list, info and uninstall want),
#     through kubectl's plugin discovery, against a local cluster from
#     hack/cluster.sh: `kubectl canary version` prints the stamped version;
#     `kubectl plugin list` shows the plugin and no warning; with
#     kubectl_complete-canary copied next to it, as the caveats say,
#     `kubectl canary <TAB>` completes verbs, flags and the namespace's
#     Services; `kubectl krew uninstall canary` removes it.
#  4. The repository as a custom index: a local clone (its plugins/canary.yaml
#     replaced by the manifest checked above, archive URLs moved to dist/
#     served on 127.0.0.1), `kubectl krew index add kubectl-canary CLONE`,
#     `kubectl krew install kubectl-canary/canary`, the plugin runs, uninstall.
#
# krew, validate-krew-manifest and kubectl are the ones hack/build-tools.sh
# builds at pinned versions (hack/tools/krew, hack/tools/kube). Nothing is
# installed outside a temporary folder, which is removed at the end.
set -euo pipefail

hack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$hack/.." && pwd)
manifest=$root/plugins/canary.yaml
dist=${DIST:-$root/dist}

# Go's default install folder, for shells whose PATH lacks it.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

log() { echo "verify-krew: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ -f $manifest ]] || die "no $manifest; run make dist krew-manifest first"
checksums=("$dist"/kubectl-canary_*_checksums.txt)
[[ ${#checksums[@]} -eq 1 && -f ${checksums[0]} ]] ||
  die "want one kubectl-canary_<version>_checksums.txt in $dist, found: ${checksums[*]}; run make dist"
version=$(basename "${checksums[0]}")
version=${version#kubectl-canary_}
version=${version%_checksums.txt}
grep -qx "  version: $version" "$manifest" ||
  die "$manifest is not the manifest of dist/'s $version; run make krew-manifest"

bin=$("$hack/build-tools.sh" krew validate-krew-manifest kubectl | tail -n 1)
work=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-canary-krew.XXXXXX")
cluster="" http_pid=""
cleanup() {
  local rc=$?
  [[ -z $http_pid ]] || kill "$http_pid" 2>/dev/null || true
  [[ -n $cluster ]] && { "$hack/cluster.sh" down "$cluster" || rc=1; }
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# kubectl finds krew as the plugin kubectl-krew; nothing else is on PATH but
# Go's and the system's folders, so that plugin list sees only these plugins.
mkdir -p "$work/tools"
ln -s "$bin/krew" "$work/tools/kubectl-krew"
ln -s "$bin/kubectl" "$work/tools/kubectl"
go_bin=$(dirname "$(command -v go)")
export PATH=$work/tools:$go_bin:/usr/bin:/bin
export KREW_NO_UPGRADE_CHECK=1 # krew would ask GitHub for its latest release
unset KUBECONFIG

start=$SECONDS
log "1. validate-krew-manifest ($(go version -m "$bin/validate-krew-manifest" | awk '$1 == "mod" { print $2, $3 }'))"
"$bin/validate-krew-manifest" -manifest "$manifest" -skip-install

# has_buildinfo FILE WORD... fails unless `go version -m FILE` shows each WORD.
has_buildinfo() {
  local file=$1 info w
  shift
  info=$(go version -m "$file") || die "go version -m $file: not a Go binary"
  for w in "$@"; do
    grep -qF -- "$w" <<<"$info" || die "$file is not built with $w:"$'\n'"$info"
  done
}

log "2. kubectl krew install --manifest --archive, for every platform"
while read -r sum archive; do
  platform=${archive#kubectl-canary_"$version"_}
  platform=${platform%.tar.gz}
  os=${platform%_*} arch=${platform#*_}
  exe=""
  [[ $os == windows ]] && exe=.exe
  krew_root=$work/krew-$platform
  KREW_ROOT=$krew_root KREW_OS=$os KREW_ARCH=$arch \
    kubectl krew install --manifest="$manifest" --archive="$dist/$archive" >"$work/install.log" 2>&1 ||
    die "installing $archive failed:"$'\n'"$(cat "$work/install.log")"
  store=$krew_root/store/canary/$version
  for f in "kubectl-canary$exe" "kubectl_complete-canary$exe" LICENSE; do
    [[ -f $store/$f ]] || die "$archive: krew did not install $f (store: $(ls "$store"))"
  done
  [[ $(readlink "$krew_root/bin/kubectl-canary$exe") == "$store/kubectl-canary$exe" ]] ||
    die "$archive: $krew_root/bin/kubectl-canary$exe does not link to the installed plugin"
  for f in "kubectl-canary$exe" "kubectl_complete-canary$exe"; do
    has_buildinfo "$store/$f" "GOOS=$os" "GOARCH=$arch" "CGO_ENABLED=0" "-trimpath=true"
  done
  # -trimpath keeps -ldflags out of the build info; the stamp is in the data.
  grep -qaF "$version" "$store/kubectl-canary$exe" || die "$archive: kubectl-canary$exe is not stamped with $version"
  log "   $os/$arch: installed ($sum)"
done <"${checksums[0]}"

os=$(go env GOOS) arch=$(go env GOARCH)
archive=kubectl-canary_${version}_${os}_$arch.tar.gz
log "3. $archive through kubectl's plugin discovery"
cluster=$work/cluster
"$hack/cluster.sh" up "$cluster" >/dev/null
# shellcheck source=/dev/null
source "$cluster/env"
export KREW_ROOT=$work/krew
export PATH=$KREW_ROOT/bin:$PATH

# install --manifest needs no plugin index, but list, info and uninstall want
# one (a git clone under KREW_ROOT/index); this one is a local repository
# holding the manifest in the index's layout, as the Krew index will.
index=$KREW_ROOT/index/default
mkdir -p "$index/plugins"
cp "$manifest" "$index/plugins/"
git -C "$index" init -q
git -C "$index" add plugins
git -C "$index" -c user.name=verify-krew -c user.email=verify-krew@localhost commit -qm "canary $version"

# (krew warns that it discards stdin whenever stdin is not a terminal.)
kubectl krew install --manifest="$manifest" --archive="$dist/$archive" </dev/null
kubectl krew list
kubectl krew info canary | grep -E '^(NAME|INDEX|VERSION|URI|SHA256):'

got=$(kubectl canary version)
echo "$got"
[[ $got == "kubectl-canary $version "* ]] || die "kubectl canary version printed \"$got\", want kubectl-canary $version"

kubectl plugin list >"$work/plugins.out" 2>"$work/plugins.err" ||
  die "kubectl plugin list failed:"$'\n'"$(cat "$work/plugins.out" "$work/plugins.err")"
cat "$work/plugins.out" "$work/plugins.err"
grep -qx "$KREW_ROOT/bin/kubectl-canary" "$work/plugins.out" || die "kubectl plugin list does not show $KREW_ROOT/bin/kubectl-canary"
[[ ! -s $work/plugins.err ]] || die "kubectl plugin list warned"

# The caveats' step: copy the helper next to the plugin.
cp "$KREW_ROOT/store/canary/$version/kubectl_complete-canary" "$KREW_ROOT/bin/"
kubectl create namespace shop >/dev/null
for svc in reviews ratings details; do
  kubectl -n shop create service clusterip "$svc" --tcp=9080 >/dev/null
done
# offers WORDS... prints what `kubectl canary WORDS<TAB>` offers, as kubectl's
# shell completion asks for it, and the directive line.
offers() {
  local got
  got=$(kubectl __complete canary "$@" 2>/dev/null | cut -f1 | paste -sd' ' -)
  echo "\$ kubectl canary $*<TAB>  ->  $got" >&2
  echo "$got"
}
want() {
  [[ $1 == "$2" ]] || die "completion offered \"$1\", want \"$2\""
}
verbs=$(offers "")
for verb in start weight promote abort status version completion; do
  [[ " $verbs " == *" $verb "* ]] || die "completion offered \"$verbs\", without $verb"
done
want "$(offers start --canary-d)" "--canary-deployment :4"
want "$(offers start -n shop r)" "ratings reviews :4"
want "$(offers status --namespace shop "")" "details ratings reviews :4"
want "$(offers -n shop weight reviews "")" ":4"

kubectl krew uninstall canary
rm "$KREW_ROOT/bin/kubectl_complete-canary"
[[ ! -e $KREW_ROOT/bin/kubectl-canary && ! -e $KREW_ROOT/store/canary ]] || die "kubectl krew uninstall left the plugin behind"
if kubectl canary version >/dev/null 2>&1; then
  die "kubectl canary still runs after the uninstall"
fi

log "4. this repository as a custom Krew index: index add, install kubectl-canary/canary"
# Users add the repository as an index (its plugins/ folder has the index's
# layout) and install from it. Here the repository is a local clone whose
# plugins/canary.yaml is the manifest just checked, with its archive URLs
# moved to dist/ served on 127.0.0.1, so that nothing leaves the machine.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$dist" "$port" >"$work/http.log" 2>&1 &
http_pid=$!
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
  sleep 0.1
done
repo=$work/index-repo
git clone -q --depth 1 "file://$root" "$repo"
# krew updates an index by resetting its branch: the clone needs one even
# when this checkout is on a detached HEAD.
git -C "$repo" checkout -q -B main
sed "s#uri: .*/$version/#uri: http://127.0.0.1:$port/#" "$manifest" >"$repo/plugins/canary.yaml"
moved=$(grep -c "uri: http://127.0.0.1:$port/" "$repo/plugins/canary.yaml" || true)
[[ $moved == "$(wc -l <"${checksums[0]}")" ]] || die "moved $moved archive URLs of $manifest to 127.0.0.1, want one per platform"
git -C "$repo" -c user.name=verify-krew -c user.email=verify-krew@localhost commit -qam "canary $version, archives on 127.0.0.1"
export KREW_ROOT=$work/krew-index
export PATH=$KREW_ROOT/bin:$PATH
kubectl krew index add kubectl-canary "$repo" </dev/null
kubectl krew index list
kubectl krew install kubectl-canary/canary </dev/null
kubectl krew list | tee "$work/list.out"
grep -qx 'kubectl-canary/canary[[:space:]]*' "$work/list.out" || die "kubectl krew list does not show kubectl-canary/canary"
got=$(kubectl canary version)
[[ $got == "kubectl-canary $version "* ]] || die "installed from the index, kubectl canary version printed \"$got\", want kubectl-canary $version"
kubectl krew uninstall canary
kubectl krew index remove kubectl-canary
[[ ! -e $KREW_ROOT/bin/kubectl-canary ]] || die "kubectl krew uninstall left the plugin behind"

log "OK: $version validated, installed for $(wc -l <"${checksums[0]}") platforms, run through kubectl on $os/$arch, installed from this repository as a custom index, uninstalled, in $((SECONDS - start))s"
