#!/usr/bin/env bash
# Whole-process GitOps figures for BENCHMARKS.md: onboard N tenants one `tenantry` process at
# a time into a fresh repository, the no-op re-run of one, then a no-op `render --write` and
# `render --check` over every tenant. Usage: scripts/bench-gitops.sh [N] (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
cargo build --release -q -p tenantry-cli
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/tenantry"
repo="$(mktemp -d)"
trap 'rm -rf "$repo"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }

start=$(ms)
for i in $(seq 1 "$n"); do
  "$bin" onboard "tenant-$i" --gitops-only --repo "$repo" >/dev/null
done
end=$(ms)
echo "onboard $n tenants (one process each): $((end - start)) ms, $(( (end - start) * 1000 / n )) µs per tenant"
echo "files written: $(find "$repo" -type f | wc -l)"

start=$(ms)
out=$("$bin" onboard tenant-1 --gitops-only --repo "$repo")
end=$(ms)
echo "re-onboard one unchanged tenant: $((end - start)) ms ($out)"

start=$(ms)
changed=$("$bin" render --write --repo "$repo" | grep -vc unchanged || true)
end=$(ms)
echo "render --write over $n unchanged tenants (no-op pass): $((end - start)) ms, $changed tenants changed"

start=$(ms)
"$bin" render --check --repo "$repo" >/dev/null
end=$(ms)
echo "render --check over $n tenants: $((end - start)) ms"
