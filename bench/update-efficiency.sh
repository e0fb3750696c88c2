#!/usr/bin/env bash
# Update efficiency on a real Debian update pair (bench/update-pair.sh): for each packing, the
# v1 and v2 images are built from the two trees and the update's download (v2's layers whose
# digest v1 lacks, compressed bytes) is compared with the ideal (a zstd -3 tar of only the new
# and changed entries). Prints a Markdown table and appends it to bench/results-update.md.
#
# So far: a single layer, one layer per component (source package; --max-layers 10000), and
# treechunk at 64 layers planned afresh and with --previous. The anchors' packings, --previous and zstd:chunked partial pulls are
# the rest of the update-efficiency issue.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/update"
mkdir -p "$out"
bash scripts/setup.sh >&2
source bench/lib.sh
require python3 zstd mmdebstrap
publish_cli
mapfile -t pair < <(bash bench/update-pair.sh)
v1="${pair[0]}" v2="${pair[1]}"

log "measuring the ideal update"
ideal_json=$(python3 bench/update_measure.py ideal "$v1" "$v2")
ideal=$(echo "$ideal_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ideal_bytes"])')

row() { # name, how v2 is planned (fresh|previous), extra build flags...
  local name="$1" plan="$2"; shift 2
  local dir="$out/$(echo "$name" | tr -c 'a-z0-9\n' '-')"
  rm -rf "$dir-v1" "$dir-v2"
  SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v1" --output "oci:$dir-v1:v1" --compression zstd "$@" >/dev/null
  local previous=(--previous none)
  [ "$plan" = previous ] && previous=(--previous "oci:$dir-v1:v1")
  SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v2" --output "oci:$dir-v2:v2" --compression zstd "${previous[@]}" "$@" >/dev/null
  python3 bench/update_measure.py download "$dir-v1" "$dir-v2" |
    python3 -c "import json,sys; r=json.load(sys.stdin); i=$ideal
print(f\"| $name | {r['layers']} | {r['v2_bytes']/1e6:.1f} | {r['download_bytes']/1e6:.1f} | {r['download_bytes']/i:.2f}x | {r['reused_layers']} of {r['layers']} |\")"
}

log "building v1 and v2 for each packing"
table=$(
  echo "| packing | layers | v2 MB | download MB | download / ideal | layers reused |"
  echo "|---|---|---|---|---|---|"
  row "single layer" fresh --max-layers 1
  row "one layer per component (source package)" fresh --max-layers 10000
  row "treechunk, 64 layers" fresh --max-layers 64
  row "treechunk, 64 layers, --previous v1" previous --max-layers 64
)
{
  echo
  echo "## update efficiency ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "- pair: $v1 -> $v2; $(echo "$ideal_json" | python3 bench/update_measure.py summary)"
  echo
  echo "$table"
} | tee -a bench/results-update.md
