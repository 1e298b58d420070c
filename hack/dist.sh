#!/usr/bin/env bash
# Builds the release archives into dist/ (`make dist`):
#
#   dist/kubectl-canary_<version>_<os>_<arch>.tar.gz   one per platform below
#   dist/kubectl-canary_<version>_checksums.txt        sha256sum format
#
# Each archive holds kubectl-canary, the kubectl_complete-canary helper (both
# .exe on Windows) and LICENSE, at its top level. The builds are static
# (CGO_ENABLED=0), -trimpath, and stamped with the version and commit.
#
# The archives are reproducible: the same commit, VERSION and Go version give
# the same bytes in any clone, under any umask, on any day (file times are
# the commit's time; hack/archive writes them in a fixed order and form).
#
# Variables:
#   VERSION  a Krew version, vMAJOR.MINOR.PATCH[-PRERELEASE]; default: the
#            v* tag at HEAD, else v0.0.0-g<12-digit commit>
#   DIST     output folder (default dist/ in the repository); the
#            kubectl-canary_* files already there are removed first
#   SOURCE_DATE_EPOCH  file time in the archives (default: the commit time)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# Byte order for globs and sorting, whatever the caller's locale.
export LC_ALL=C

# Go's default install folder, for shells whose PATH lacks it.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)

log() { echo "dist: $*" >&2; }
die() { log "error: $*"; exit 1; }

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -z ${VERSION:-} ]]; then
  VERSION=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null || echo "v0.0.0-g$commit")
fi
# Krew needs a v-prefixed semantic version; build metadata (+...) would
# need escaping in the release URLs, so it is refused too.
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
[[ $VERSION =~ $semver ]] ||
  die "VERSION=$VERSION is not a Krew version; give one like v0.1.0 (make dist VERSION=v0.1.0)"
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  log "warning: the work tree has uncommitted changes; the archives contain them, so they are not a build of commit $commit alone"
fi
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

dist=${DIST:-$root/dist}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
build=$(mktemp -d "${TMPDIR:-/tmp}/kubectl-canary-dist.XXXXXX")
trap 'rm -rf "$build"' EXIT
rm -f "$dist"/kubectl-canary_*

pkg=github.com/kubectl-canary/kubectl-canary
ldflags="-s -w -X $pkg/pkg/version.Version=$VERSION -X $pkg/pkg/version.Commit=$commit"
# Only the flags below shape the binaries: none from the caller's environment
# (GOFLAGS, a go.work), and the baseline instruction sets, whatever GOAMD64
# or GOARM64 say.
export CGO_ENABLED=0 GOFLAGS='' GOWORK=off GOAMD64=v1 GOARM64=v8.0

# The archiver is compiled once for this machine, not per platform.
go build -o "$build/archive" ./hack/archive

start=$SECONDS
log "building $VERSION (commit $commit) for ${platforms[*]}"
for platform in "${platforms[@]}"; do
  os=${platform%/*} arch=${platform#*/}
  exe=""
  [[ $os == windows ]] && exe=.exe
  out=$build/${os}_$arch
  t0=$SECONDS
  for main in kubectl-canary kubectl_complete-canary; do
    GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false -ldflags "$ldflags" \
      -o "$out/$main$exe" "./cmd/$main"
  done
  archive=kubectl-canary_${VERSION}_${os}_$arch.tar.gz
  "$build/archive" -o "$dist/$archive" -mtime "$SOURCE_DATE_EPOCH" \
    "$out/kubectl-canary$exe" "$out/kubectl_complete-canary$exe" LICENSE
  log "$archive in $((SECONDS - t0))s"
done

checksums=kubectl-canary_${VERSION}_checksums.txt
(
  cd "$dist"
  if command -v sha256sum >/dev/null; then
    sha256sum kubectl-canary_"${VERSION}"_*.tar.gz
  else
    shasum -a 256 kubectl-canary_"${VERSION}"_*.tar.gz
  fi
) >"$dist/$checksums"
chmod 644 "$dist/$checksums"
log "built ${#platforms[@]} archives in $((SECONDS - start))s; $dist/$checksums:"
cat "$dist/$checksums"
