#!/usr/bin/env bash
# Installs etcd and kube-apiserver for the local control plane into a cache directory outside the work tree.
# Idempotent: binaries already in the cache are reused. Prints `source=... version=... dir=...` on success.
#
# Sources, in order (issue "A real local Kubernetes control plane"):
#   a. $KUBEBUILDER_ASSETS when it holds both etcd and kube-apiserver;
#   b. the cache ($CFNET_CACHE_DIR, default ~/.cache/cfnet), built from Go modules when missing;
#   c. fallback: Debian's etcd-server + kube-apiserver 1.20.2 from Debian's kubernetes source package.
set -euo pipefail

K8S_VERSION="${CFNET_K8S_VERSION:-1.37.2}"   # matches k8s-openapi feature v1_37 (`latest` in 0.29)
ETCD_VERSION="${CFNET_ETCD_VERSION:-3.6.16}"
CACHE="${CFNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfnet}"
BIN="$CACHE/bin"
log() { echo "install-control-plane: $*" >&2; }
SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"   # the build steps cd elsewhere

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/etcd" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]]; then
  echo "source=KUBEBUILDER_ASSETS version=$("$KUBEBUILDER_ASSETS/kube-apiserver" --version 2>/dev/null | awk '{print $2}') dir=$KUBEBUILDER_ASSETS"
  exit 0
fi

mkdir -p "$BIN"
# One installer at a time per cache: parallel test processes may all find the binaries missing; the later
# ones wait here and then reuse what the first one built.
if command -v flock >/dev/null; then
  exec 9>"$CACHE/install.lock"
  flock 9
fi
GOCACHE_DIR="$CACHE/go"
export GOPATH="$GOCACHE_DIR/path" GOMODCACHE="$GOCACHE_DIR/path/pkg/mod" GOCACHE="$GOCACHE_DIR/build" GOFLAGS=-mod=mod
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

# Enters directory $1 holding a fresh Go module named $2 (the throwaway module a binary is built from).
enter_module() {
  mkdir -p "$1"
  cd "$1"
  printf 'module %s\n\ngo 1.25\n' "$2" > go.mod
}

build_apiserver() {
  local dir="$CACHE/src/kube-apiserver-$K8S_VERSION"
  log "building kube-apiserver v$K8S_VERSION from Go modules in $dir (several minutes on first run)"
  enter_module "$dir" cfnet.local/kube-apiserver
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
  go mod download "k8s.io/kubernetes@v$K8S_VERSION"
  local kmod
  kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
  # k8s.io/kubernetes lists its staging modules as v0.0.0 with local replaces; point each at its published tag.
  local staging_version="v0.${K8S_VERSION#1.}"
  grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$kmod" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@$staging_version"
  done
  cat > main.go <<'GO'
package main

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"

func main() {}
GO
  rm -f main.go
  go mod tidy -e >/dev/null 2>&1 || true
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION"
  # Without these the server reports v0.0.0-master and derives its emulation version from that.
  local pkg=k8s.io/component-base/version minor="${K8S_VERSION#1.}"
  minor="${minor%%.*}"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" \
    -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

build_etcd() {
  local dir="$CACHE/src/etcd-$ETCD_VERSION"
  log "building etcd v$ETCD_VERSION from Go modules in $dir"
  enter_module "$dir" cfnet.local/etcd
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go mod tidy
  CGO_ENABLED=0 go build -trimpath -o "$BIN/etcd.tmp" .
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

if [[ -x "$BIN/etcd" && -x "$BIN/kube-apiserver" ]]; then
  # SOURCE records how the cache was filled (go-modules or debian).
  echo "source=cache/$(cat "$BIN/SOURCE" 2>/dev/null || echo unknown) version=$("$BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}') dir=$BIN"
  exit 0
fi

source_used=go-modules
if [[ ! -x "$BIN/etcd" ]]; then
  build_etcd || { log "etcd build from Go modules failed"; source_used=failed; }
fi
if [[ -x "$BIN/kube-apiserver" ]] && ! "$BIN/kube-apiserver" --version 2>/dev/null | grep -q "v$K8S_VERSION\$"; then
  rm -f "$BIN/kube-apiserver"   # an older or unversioned build: rebuild (the Go build cache makes this quick)
fi
if [[ ! -x "$BIN/kube-apiserver" && "$source_used" != failed ]]; then
  build_apiserver || { log "kube-apiserver build from Go modules failed"; source_used=failed; }
fi

if [[ "$source_used" == failed ]]; then
  log "falling back to Debian packages (etcd-server, kubernetes 1.20.2 source)"
  bash "$SCRIPT_DIR/install-control-plane-debian.sh" "$BIN"
  source_used=debian
fi

echo "$source_used" > "$BIN/SOURCE"
version="$("$BIN/kube-apiserver" --version 2>/dev/null | awk '{print $2}')"
echo "source=$source_used version=$version dir=$BIN"
