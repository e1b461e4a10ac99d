#!/usr/bin/env bash
# The project's test command (README "Test"): installs the test binaries it needs (etcd, kube-apiserver, helm and
# istiod, built from the Go module proxy into ~/.cache/cfnet on first use; istiod's first build takes 10-20 minutes),
# checks formatting and lints, then runs every test. Tests that need the API server start their own etcd +
# kube-apiserver (and istiod) on loopback; none is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test binaries (cached in ${CFNET_CACHE_DIR:-$HOME/.cache/cfnet}) =="
bash scripts/install-control-plane.sh
bash scripts/install-helm.sh
bash scripts/install-istiod.sh

echo "== cargo fmt --check =="
cargo fmt --all -- --check

echo "== cargo clippy (-D warnings) =="
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test =="
cargo test --workspace --locked --no-fail-fast
