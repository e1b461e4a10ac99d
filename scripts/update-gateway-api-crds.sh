#!/usr/bin/env bash
# Regenerates testdata/gateway-api-crds.yaml: the Gateway API standard-channel CustomResourceDefinitions of the
# Go module sigs.k8s.io/gateway-api at GATEWAY_API_VERSION, as the module ships them in config/crd/standard/,
# concatenated in the order of config/crd/kustomization.yaml. The ValidatingAdmissionPolicy of that directory
# (safe-upgrades, which guards CRD upgrades) is left out: it is not a CRD and checks no HTTPRoute.
# Run from anywhere; needs `go` (the module comes from the Go module proxy into the cfnet cache).
set -euo pipefail

GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
CACHE="${CFNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfnet}"
export GOMODCACHE="$CACHE/go/path/pkg/mod" GOFLAGS=-mod=mod
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/testdata/gateway-api-crds.yaml"

dir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$dir/config/crd/standard" ]] || { echo "update-gateway-api-crds: no config/crd/standard in '$dir'" >&2; exit 1; }

{
  echo "# Gateway API standard-channel CRDs of the Go module sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"
  echo "# (config/crd/standard/*.yaml in the order of config/crd/kustomization.yaml, unchanged below this header;"
  echo "# the safe-upgrades ValidatingAdmissionPolicy is left out). Produced by scripts/update-gateway-api-crds.sh."
  echo "# Used by crates/testenv (Options::gateway_api_crds installs them into the local API server, whose CEL"
  echo "# rules then check every HTTPRoute cfnet writes) and by crates/api's tests (field names of the types)."
  for f in $(sed -n 's/^[[:space:]]*- standard\/\(.*\.yaml\)$/\1/p' "$dir/config/crd/kustomization.yaml"); do
    case "$f" in *vap_*) continue ;; esac
    echo "---"
    cat "$dir/config/crd/standard/$f"
  done
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "update-gateway-api-crds: wrote $OUT ($(grep -c '^kind: CustomResourceDefinition' "$OUT") CRDs, $GATEWAY_API_VERSION)" >&2
