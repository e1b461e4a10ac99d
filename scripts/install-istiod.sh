#!/usr/bin/env bash
# Installs istiod (Istio's `pilot-discovery`) for the tests, the demo and the benchmark into the same cache as
# etcd and kube-apiserver (scripts/install-control-plane.sh), outside the work tree. Idempotent: a binary of the
# wanted version already in the cache is reused. Prints `version=... path=...` on its last line.
#
# The Go module proxy serves no release tag of istio.io/istio, so we build a pinned pseudo-version of Istio's
# master (1.31-dev) with plain `go install` (docs/istio.md). Cold: 10-20 minutes on 2 cores; warm: seconds.
set -euo pipefail

ISTIO_VERSION="${CFNET_ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}"
CACHE="${CFNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfnet}"
BIN="$CACHE/bin"
log() { echo "install-istiod: $*" >&2; }

installed_version() { cat "$BIN/pilot-discovery.version" 2>/dev/null || true; }

if [[ -x "$BIN/pilot-discovery" && "$(installed_version)" == "$ISTIO_VERSION" ]]; then
  echo "version=$ISTIO_VERSION path=$BIN/pilot-discovery"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build istiod (https://go.dev/dl/); not found in PATH"; exit 1; }
mkdir -p "$BIN"
# One build at a time per cache: parallel test binaries may all find istiod missing.
exec 9>"$CACHE/install-istiod.lock"
if ! flock -n 9; then
  log "another istiod build holds $CACHE/install-istiod.lock; waiting for it"
  flock 9
fi
if [[ -x "$BIN/pilot-discovery" && "$(installed_version)" == "$ISTIO_VERSION" ]]; then
  echo "version=$ISTIO_VERSION path=$BIN/pilot-discovery"
  exit 0
fi

GOCACHE_DIR="$CACHE/go"
export GOPATH="$GOCACHE_DIR/path" GOMODCACHE="$GOCACHE_DIR/path/pkg/mod" GOCACHE="$GOCACHE_DIR/build"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS=-mod=mod
log "building pilot-discovery istio.io/istio@$ISTIO_VERSION from the Go module proxy (10-20 minutes on first run)"
tmp="$(mktemp -d "$CACHE/istiod-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION"
mv "$tmp/pilot-discovery" "$BIN/pilot-discovery"
echo "$ISTIO_VERSION" > "$BIN/pilot-discovery.version"
log "installed $BIN/pilot-discovery ($ISTIO_VERSION)"
echo "version=$ISTIO_VERSION path=$BIN/pilot-discovery"
