#!/usr/bin/env bash
# Builds the static `cfnet` binary that the Containerfile copies into its distroless image, and checks that it is
# really static. Prints the path of the binary on stdout (target/static/cfnet).
#
#   musl (preferred): x86_64-unknown-linux-musl; needs `rustup target add x86_64-unknown-linux-musl` and musl-gcc
#                     (Debian: musl-tools) because ring compiles C and assembly;
#   fallback:         glibc with crt-static (x86_64-unknown-linux-gnu + `-C target-feature=+crt-static`). In-cluster
#                     the client reaches the API server by IP (KUBERNETES_SERVICE_HOST), so glibc's NSS is not needed.
#
# CFNET_STATIC_TARGET=musl|gnu forces one. A full release build: several minutes on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { echo "build-static: $*" >&2; }

musl_ready() {
  rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl && command -v musl-gcc >/dev/null
}

choice="${CFNET_STATIC_TARGET:-}"
if [[ -z "$choice" ]]; then
  if musl_ready || { rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 && command -v musl-gcc >/dev/null; }; then
    choice=musl
  else
    log "musl target or musl-gcc unavailable; building a static glibc binary instead"
    choice=gnu
  fi
fi

case "$choice" in
  musl)
    target=x86_64-unknown-linux-musl
    export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
    ;;
  gnu)
    target=x86_64-unknown-linux-gnu
    # Only for this target: build scripts and proc macros stay dynamic (they run on the build host).
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:-} -C target-feature=+crt-static"
    ;;
  *) log "CFNET_STATIC_TARGET must be musl or gnu, not '$choice'"; exit 2 ;;
esac

# The image needs no debug info; symbols stay for readable panics.
export CARGO_PROFILE_RELEASE_STRIP="${CARGO_PROFILE_RELEASE_STRIP:-debuginfo}"
# Without the default feature dev-tools: the image runs `cfnet controller` (and render, crd); demo, dev and
# bench, with the local control plane and the benchmark, are left out.
log "cargo build --release --locked -p cfnet --no-default-features --target $target"
cargo build --release --locked -p cfnet --no-default-features --target "$target" >&2

built="target/$target/release/cfnet"
out_dir="target/static"
mkdir -p "$out_dir"
cp "$built" "$out_dir/cfnet.tmp"
mv "$out_dir/cfnet.tmp" "$out_dir/cfnet"

# Refuse a binary that would need a dynamic loader: distroless/static and scratch have none.
if readelf -l "$out_dir/cfnet" 2>/dev/null | grep -q 'INTERP'; then
  log "$out_dir/cfnet has a program interpreter (dynamically linked):"
  readelf -l "$out_dir/cfnet" | grep -A1 INTERP >&2
  exit 1
fi
if readelf -d "$out_dir/cfnet" 2>/dev/null | grep -q '(NEEDED)'; then
  log "$out_dir/cfnet needs shared libraries:"
  readelf -d "$out_dir/cfnet" | grep NEEDED >&2
  exit 1
fi
command -v file >/dev/null && log "$(file -b "$out_dir/cfnet")"
log "size $(du -h "$out_dir/cfnet" | cut -f1) ($target)"
echo "$ROOT/$out_dir/cfnet"
