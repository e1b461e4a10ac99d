#!/usr/bin/env bash
# Installs the helm CLI used by the chart tests (crates/cfnet/tests/helm/) into a cache directory outside the
# work tree. Idempotent: a helm already in the cache is reused. Prints the absolute path of helm on stdout.
#
# helm is built from the Go module proxy (helm.sh/helm/v3, CGO_ENABLED=0); Go's caches live under the cache dir,
# as in scripts/install-control-plane.sh.
set -euo pipefail

HELM_VERSION="${CFNET_HELM_VERSION:-3.21.4}"
CACHE="${CFNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfnet}"
BIN="$CACHE/bin"
log() { echo "install-helm: $*" >&2; }

if [[ -x "$BIN/helm" ]]; then
  echo "$BIN/helm"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build helm (https://go.dev/dl/); not found in PATH"; exit 1; }

mkdir -p "$BIN"
GOCACHE_DIR="$CACHE/go"
export GOPATH="$GOCACHE_DIR/path" GOMODCACHE="$GOCACHE_DIR/path/pkg/mod" GOCACHE="$GOCACHE_DIR/build" GOFLAGS=-mod=mod
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

dir="$CACHE/src/helm-$HELM_VERSION"
mkdir -p "$dir"
cd "$dir"
log "building helm v$HELM_VERSION from Go modules in $dir (a few minutes on first run)"
# Only one build at a time per cache: parallel test binaries may all find helm missing.
exec 9>"$dir/.lock"
flock 9
if [[ ! -x "$BIN/helm" ]]; then
  cat > go.mod <<MOD
module cfnet.local/helm

go 1.24
MOD
  go get "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  # helm reads its own version from this variable (`helm version`); the chart tests don't depend on it.
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    -o "$BIN/helm.tmp" helm.sh/helm/v3/cmd/helm
  mv "$BIN/helm.tmp" "$BIN/helm"
fi
echo "$BIN/helm"
