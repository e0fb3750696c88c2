#!/usr/bin/env bash
# Partial pull on the real Debian update pair (bench/update-pair.sh): v1 and v2 are built with
# --compression zstd:chunked at 64 layers (v2 with --previous v1), pushed to a local
# docker-registry on a free loopback port, v1 is pulled into a layout, then v2 into the same
# layout. The download is what the v2 pull fetched for layers v1 lacks, as the client counts it
# (partial_bytes_fetched) and as the registry's access log counts it (206/200 bodies of those
# blobs); it is compared with the ideal (a zstd -3 tar of only the new and changed entries) and
# with downloading the changed zstd:chunked layers whole. Prints a Markdown table and appends it
# to bench/results-partial.md.
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside $(partial_pull ...) stops the run
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/partial"
rm -rf "$out" && mkdir -p "$out/home"
bash scripts/setup.sh >&2
source bench/lib.sh
require python3 zstd mmdebstrap docker-registry
publish_cli
mapfile -t pair < <(bash bench/update-pair.sh)
v1="${pair[0]}" v2="${pair[1]}"
isolate_home "$out"

log "measuring the ideal update"
ideal=$(python3 bench/update_measure.py ideal "$v1" "$v2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ideal_bytes"])')

log "building v1 and v2 (zstd:chunked, 64 layers, v2 --previous v1)"
SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v1" --output "oci:$out/built:v1" --compression zstd:chunked --max-layers 64 >/dev/null
SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v2" --output "oci:$out/built:v2" --compression zstd:chunked --max-layers 64 --previous "oci:$out/built:v1" >/dev/null

start_registry "$out/registry"
measured=$(partial_pull "oci:$out/built:v1" "oci:$out/built:v2" "$out/pull")

table=$(python3 - "$ideal" "$measured" <<'EOF'
import json, sys
ideal, r = int(sys.argv[1]), json.loads(sys.argv[2])
mb = lambda b: f"{b / 1e6:.1f}"
print("| download of v2 after v1 | MB | / ideal |")
print("|---|---|---|")
print(f"| ideal (zstd -3 tar of the new and changed entries) | {mb(ideal)} | 1.00x |")
print(f"| changed zstd:chunked layers, whole ({r['changed']} of {r['layers']}) | {mb(r['whole'])} | {r['whole'] / ideal:.2f}x |")
print(f"| partial pull, counted by treechunk ({r['requests']} range requests) | {mb(r['client'])} | {r['client'] / ideal:.2f}x |")
print(f"| partial pull, counted by the registry's access log | {mb(r['logged'])} | {r['logged'] / ideal:.2f}x |")
print()
print(f"- bytes: ideal {ideal}, fetched {r['client']} (client) = {r['logged']} (registry log), changed layers whole {r['whole']}.")
print()
print(f"- v2 is {mb(r['v2_bytes'])} MB in zstd:chunked; the pull of v2 took {r['seconds']:.2f} s; "
      f"{r['rebuilt']} layers were rebuilt, every blob verified (oci verify-layers).")
EOF
)
echo "$table"
{ echo; echo "## $(date -u +%Y-%m-%d) partial pull, $(basename "$(dirname "$v1")")"; echo; echo "$table"; } >> bench/results-partial.md
