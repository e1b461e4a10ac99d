#!/usr/bin/env bash
# Fallback installer for the local control plane (issue 3, §1c; facts in ../shared/reference/verified-facts.md):
# etcd from Debian's `etcd-server` package and kube-apiserver 1.20.2 built from Debian's `kubernetes` source
# package with Debian's Go 1.19, plus the three vendor/ patches without which that server is broken.
#
# Usage: install-control-plane-debian.sh BIN_DIR
# Puts `etcd` and `kube-apiserver` into BIN_DIR. Idempotent: binaries already there are kept.
# Needs root or sudo (apt-get install). Takes about 7 minutes on 2 cores the first time.
set -euo pipefail

BIN="${1:?usage: install-control-plane-debian.sh BIN_DIR}"
K8S_DEBIAN_VERSION="1.20.2"
SUITE="${CFNET_DEBIAN_SUITE:-bookworm}"
CACHE="${CFNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfnet}"
WORK="$CACHE/debian"
log() { echo "install-control-plane-debian: $*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$BIN" "$WORK"
BIN="$(cd "$BIN" && pwd)"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || die "apt-get needs root: run as root or install sudo"
  SUDO=(sudo)
fi
command -v apt-get >/dev/null || die "apt-get not found: this fallback needs a Debian-based system; install etcd and kube-apiserver yourself and set KUBEBUILDER_ASSETS"

apt_install() {
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends "$@" >&2
}

# --- etcd: Debian's etcd-server (3.4.x) -------------------------------------------------------------------
if [[ ! -x "$BIN/etcd" ]]; then
  log "installing etcd from Debian's etcd-server package"
  "${SUDO[@]}" apt-get update >&2 || log "apt-get update failed; trying with the existing package lists"
  apt_install etcd-server
  etcd_path="$(command -v etcd || true)"
  [[ -z "$etcd_path" && -x /usr/bin/etcd ]] && etcd_path=/usr/bin/etcd
  [[ -n "$etcd_path" ]] || die "etcd-server installed but no etcd binary found"
  # The package starts a system etcd on 2379; we run our own on free ports, so stop it if it runs.
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    "${SUDO[@]}" systemctl stop etcd || true
  fi
  cp "$etcd_path" "$BIN/etcd.tmp" && mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

# --- kube-apiserver 1.20.2 from Debian's kubernetes source package ----------------------------------------
if [[ ! -x "$BIN/kube-apiserver" ]]; then
  log "building kube-apiserver $K8S_DEBIAN_VERSION from Debian's kubernetes source package in $WORK (about 7 minutes)"
  apt_install golang-go rsync jq make dpkg-dev \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
  GO119=/usr/lib/go-1.19/bin
  [[ -x "$GO119/go" ]] || die "Debian's Go 1.19 is not at $GO119 (golang-go of $SUITE); this fallback needs it"

  # A private apt configuration with a deb-src entry, so the system's sources stay untouched.
  APT="$WORK/apt"
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
  echo "deb-src http://deb.debian.org/debian $SUITE main" > "$APT/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "APT::Sandbox::User=root")
  apt-get "${apt_opts[@]}" update >&2

  SRC_PARENT="$WORK/src"
  mkdir -p "$SRC_PARENT"
  cd "$SRC_PARENT"
  if ! ls kubernetes_*.dsc >/dev/null 2>&1; then
    apt-get "${apt_opts[@]}" source --download-only kubernetes >&2
  fi
  dsc="$(ls kubernetes_*.dsc | head -n1)"
  SRC="$SRC_PARENT/kubernetes-$K8S_DEBIAN_VERSION"
  if [[ ! -d "$SRC/vendor" ]]; then
    rm -rf "$SRC"
    dpkg-source -x "$dsc" "$SRC" >&2
  fi
  [[ -d "$SRC/vendor" ]] || die "$SRC has no vendor/ directory; the Debian source package changed"

  # Patch 1: reflect2 := Debian's v1.0.2 (the vendored one crashes in runtime.mapiternext with newer runtimes).
  reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -d "$reflect2" ]] || die "$reflect2 missing (golang-github-modern-go-reflect2-dev)"
  rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
  cp -r "$reflect2" "$SRC/vendor/github.com/modern-go/reflect2"
  # Patch 2: json-iterator := Debian's v1.1.12, the version made for reflect2 v1.0.2.
  jsoniter=/usr/share/gocode/src/github.com/json-iterator/go
  [[ -d "$jsoniter" ]] || die "$jsoniter missing (golang-github-json-iterator-go-dev)"
  rm -rf "$SRC/vendor/github.com/json-iterator/go"
  cp -r "$jsoniter" "$SRC/vendor/github.com/json-iterator/go"
  find "$SRC/vendor/github.com/json-iterator/go" -name '*_test.go' -delete
  # Patch 3: only nil is null. The old test treats every zero value (e.g. "") as null and rejects custom
  # resources holding an empty string (a Route with host "").
  for f in "$SRC/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go" \
           "$SRC/vendor/github.com/go-openapi/validate/type.go"; do
    [[ -f "$f" ]] || continue
    sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$f"
    if grep -q 'reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data))' "$f"; then
      die "could not patch the zero-value test in $f"
    fi
  done

  # Build with Debian's Go 1.19 first on PATH, inside a GOPATH that holds the source at its import path.
  export GOPATH="$SRC/.go"
  mkdir -p "$GOPATH/src/k8s.io"
  ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
  # Kubernetes 1.20's hack/ scripts choose their own module mode; settings inherited from the Go-modules
  # installer (GOFLAGS=-mod=mod, GOMODCACHE, ...) would break that build.
  unset GOROOT GOFLAGS GO111MODULE GOMODCACHE GOTOOLCHAIN
  export PATH="$GO119:$PATH" GOCACHE="$WORK/go-build-cache"
  # No .git in a source package: hand the version to hack/lib/version.sh.
  export KUBE_GIT_VERSION="v$K8S_DEBIAN_VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
  cd "$GOPATH/src/k8s.io/kubernetes"
  make WHAT=cmd/kube-apiserver >&2
  built="$(find "$SRC/_output" -type f -name kube-apiserver -perm -u+x | head -n1)"
  [[ -n "$built" ]] || die "make finished but no kube-apiserver under $SRC/_output"
  cp "$built" "$BIN/kube-apiserver.tmp" && mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
fi

log "etcd $("$BIN/etcd" --version 2>/dev/null | head -n1) and $("$BIN/kube-apiserver" --version 2>/dev/null) in $BIN"
