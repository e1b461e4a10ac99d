#!/usr/bin/env bash
# Builds kube-apiserver v1.37.2 with a DIAGNOSTIC patch to its ClusterIP allocator into $CACHE/patched-bin (next to a
# link to the cached etcd), to measure cfnet without kube-apiserver's O(N)-per-Service allocator gauges:
#   scripts/build-patched-apiserver.sh
#   KUBEBUILDER_ASSETS=~/.cache/cfnet/patched-bin target/release/cfnet bench --routes 10000 --out bench-out/patched
# Why: docs/apiserver-clusterip-allocation.md. Never run this build in production; it only proves the cause.
set -euo pipefail

K8S_VERSION=1.37.2   # the patch is for this version's pkg/registry/core/service/ipallocator/ipallocator.go
CACHE="${CFNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfnet}"
SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"
PATCH="$SCRIPT_DIR/patches/kube-apiserver-$K8S_VERSION-ipallocator-gauges.diff"
OUT="$CACHE/patched-bin"
log() { echo "build-patched-apiserver: $*" >&2; }

# The stock build first: it fills the module cache and leaves the Go module that builds kube-apiserver.
CFNET_K8S_VERSION="$K8S_VERSION" "$SCRIPT_DIR/install-control-plane.sh" >/dev/null
SRC="$CACHE/src/kube-apiserver-$K8S_VERSION"
[[ -f "$SRC/go.mod" ]] || { log "$SRC/go.mod is missing: the stock kube-apiserver was not built from Go modules (KUBEBUILDER_ASSETS or Debian fallback?); unset KUBEBUILDER_ASSETS and rerun"; exit 1; }

GOCACHE_DIR="$CACHE/go"
export GOPATH="$GOCACHE_DIR/path" GOMODCACHE="$GOCACHE_DIR/path/pkg/mod" GOCACHE="$GOCACHE_DIR/build" GOFLAGS=-mod=mod
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

# Go refuses overlays of files in the module cache, so build against a patched copy of the module.
ORIG_MOD="$GOMODCACHE/k8s.io/kubernetes@v$K8S_VERSION"
[[ -d "$ORIG_MOD" ]] || { log "$ORIG_MOD is missing: run scripts/install-control-plane.sh first"; exit 1; }
WORK="$OUT/src"
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$SRC/go.mod" "$SRC/go.sum" "$WORK/"
cp -r "$ORIG_MOD" "$WORK/k8s"
chmod -R u+w "$WORK/k8s"
patch --quiet "$WORK/k8s/pkg/registry/core/service/ipallocator/ipallocator.go" < "$PATCH"
(cd "$WORK" && go mod edit -replace=k8s.io/kubernetes=./k8s)

log "building patched kube-apiserver v$K8S_VERSION into $OUT (a minute or two with a warm Go cache)"
pkg=k8s.io/component-base/version
minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
cd "$WORK"
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=dirty -X $pkg.buildDate=1970-01-01T00:00:00Z" \
  -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
ln -sf "$CACHE/bin/etcd" "$OUT/etcd"
echo "dir=$OUT"
