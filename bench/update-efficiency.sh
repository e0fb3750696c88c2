#!/usr/bin/env bash
# Update efficiency on a real Debian update pair (bench/update-pair.sh): for each packing, the
# v1 and v2 images are built from the two trees and the update's download (v2's layers whose
# digest v1 lacks, compressed bytes) is compared with the ideal (a zstd -3 tar of only the new
# and changed entries). Prints a Markdown table and appends it to bench/results-update.md.
#
# Rows: a single layer; one layer per binary package (copies of the trees whose dpkg status
# has no Source: fields, so treechunk's components are the binary packages); one layer per
# source package (--max-layers 10000, --chunk-size 1G so no package is cut into parts); one
# layer per treechunk component (large packages in parts); re-implementations of ostree-ext's and
# chunkah's packings at 64 layers (bench/anchor_packing.py plans them from the components of
# the one-per-component images and the trees' changelogs; treechunk builds each plan through
# --previous, from a layout holding only a manifest that names the plan's layers, and the
# built image is checked to hold exactly the planned layers); treechunk at 64 layers planned
# afresh and with --previous; the same tree built twice (every layer reused); and zstd:chunked
# with --previous, pulled partially from a local docker-registry.
set -euo pipefail
shopt -s inherit_errexit  # a failing step inside the table's $(...) stops the run
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/update"
mkdir -p "$out"
bash scripts/setup.sh >&2
source bench/lib.sh
require python3 zstd mmdebstrap docker-registry curl
publish_cli
mapfile -t pair < <(bash bench/update-pair.sh)
v1="${pair[0]}" v2="${pair[1]}"

log "measuring the ideal update"
ideal_json=$(python3 bench/update_measure.py ideal "$v1" "$v2")
ideal=$(echo "$ideal_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ideal_bytes"])')

dir_of() { echo "$out/$(echo "$1" | tr -c 'a-z0-9\n' '-')"; }

build() { # ROOTFS LAYOUT TAG PREVIOUS [build flags...]: one image; its --json report goes to LAYOUT.json
  local rootfs="$1" layout="$2" tag="$3" previous="$4"; shift 4
  rm -rf "$layout"
  SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$rootfs" --output "oci:$layout:$tag" \
    --compression "${compression:-zstd}" --previous "$previous" --json "$@" >"$layout.json"
}

measure() { # name, directory prefix (DIR-v1, DIR-v2): one table row
  python3 bench/update_measure.py download "$2-v1" "$2-v2" |
    python3 -c "import json,sys; r=json.load(sys.stdin); i=$ideal
print(f\"| $1 | {r['layers']} | {r['v2_bytes']/1e6:.1f} | {r['download_bytes']/1e6:.1f} | {r['download_bytes']/i:.2f}x | {r['reused_layers']} of {r['layers']} |\")"
}

row() { # name, how v2 is planned (fresh|previous), extra build flags...
  local name="$1" plan="$2"; shift 2
  local dir; dir=$(dir_of "$name")
  build "$v1" "$dir-v1" v1 none "$@"
  local previous=none
  [ "$plan" = previous ] && previous="oci:$dir-v1:v1"
  build "$v2" "$dir-v2" v2 "$previous" "$@"
  measure "$name" "$dir"
}

# One layer per binary package: treechunk groups by dpkg Source:, so in copies of the trees
# whose status file has no Source: fields every binary package is its own source. (The
# user.component xattr would also do, but user xattrs cannot be set on symlinks, and they
# would add a record to every file of every layer.)
binary_row() { # name
  local name="$1" dir; dir=$(dir_of "$1")
  local v
  for v in v1 v2; do
    rm -rf "$dir-tree-$v"
    if [ "$v" = v1 ]; then cp -a "$v1" "$dir-tree-$v"; else cp -a "$v2" "$dir-tree-$v"; fi
    python3 - "$dir-tree-$v/var/lib/dpkg/status" <<'PY'
import os, sys
p = sys.argv[1]
st = os.stat(p)
lines = open(p, encoding='utf-8').read().split('\n')
open(p, 'w', encoding='utf-8').write('\n'.join(l for l in lines if not l.startswith('Source:')))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
  done
  build "$dir-tree-v1" "$dir-v1" v1 none --max-layers 10000 --chunk-size 1G
  build "$dir-tree-v2" "$dir-v2" v2 none --max-layers 10000 --chunk-size 1G
  rm -rf "$dir-tree-v1" "$dir-tree-v2"
  measure "$name" "$dir"
}

# An anchor's packing, re-implemented in bench/anchor_packing.py, built by treechunk: each plan
# becomes a layout holding only a manifest whose layers name the plan's components, which
# --previous makes treechunk follow; the built image is checked against the plan.
anchor_row() { # name, algorithm (ostree-ext|chunkah), layers
  local name="$1" algorithm="$2" layers="$3" dir; dir=$(dir_of "$1")
  local components; components=$(dir_of "$per_component")
  local prior=() v tree
  for v in v1 v2; do
    if [ "$v" = v1 ]; then tree="$v1"; else tree="$v2"; fi
    python3 bench/anchor_packing.py plan "$algorithm" --tree "$tree" --components "$components-$v" \
      --max-layers "$layers" "${prior[@]}" --out "$dir-plan-$v.json"
    rm -rf "$dir-plan-$v"
    python3 bench/anchor_packing.py layout "$dir-plan-$v.json" "$dir-plan-$v"
    build "$tree" "$dir-$v" "$v" "oci:$dir-plan-$v:plan" --max-layers "$layers"
    python3 bench/anchor_packing.py check "$dir-plan-$v.json" "$dir-$v" "$dir-$v.json"
    # ostree-ext plans an update from the previous build's layers; chunkah plans every build afresh
    [ "$algorithm" = ostree-ext ] && prior=(--prior "$dir-plan-v1.json")
  done
  measure "$name" "$dir"
}

# Two builds of the same tree: every layer must be reused.
same_row() { # name, extra build flags...
  local name="$1" dir; dir=$(dir_of "$1"); shift
  build "$v2" "$dir-v1" v1 none "$@"
  build "$v2" "$dir-v2" v2 none "$@"
  measure "$name" "$dir"
}

# zstd:chunked, v2 with --previous v1, both pushed to a local docker-registry: the download is
# what a partial pull of v2 into a layout holding v1 fetched (bench/lib.sh partial_pull), as
# treechunk counts it, checked against the registry's access log.
partial_row() { # name, extra build flags...
  local name="$1" dir; dir=$(dir_of "$1"); shift
  compression=zstd:chunked build "$v1" "$dir-v1" v1 none "$@"
  compression=zstd:chunked build "$v2" "$dir-v2" v2 "oci:$dir-v1:v1" "$@"
  partial_pull "oci:$dir-v1:v1" "oci:$dir-v2:v2" "$dir-pull" |
    python3 -c "import json,sys; r=json.load(sys.stdin); i=$ideal
print(f\"| $name | {r['layers']} | {r['v2_bytes']/1e6:.1f} | {r['client']/1e6:.1f} | {r['client']/i:.2f}x | {r['layers'] - r['changed']} of {r['layers']} |\")"
}

per_component="one layer per source package"
# The partial-pull row's registry and client state stay in bench/.out (no user auth or registries.conf).
isolate_home "$out"
mkdir -p "$HOME"
start_registry "$out/registry"
log "building v1 and v2 for each packing"
table=$(
  echo "| packing | layers | v2 MB | download MB | download / ideal | layers reused |"
  echo "|---|---|---|---|---|---|"
  row "single layer" fresh --max-layers 1
  binary_row "one layer per binary package"
  row "$per_component" fresh --max-layers 10000 --chunk-size 1G
  row "one layer per treechunk component (large packages in parts)" fresh --max-layers 10000
  anchor_row "ostree-ext packing (re-implemented), 64 layers" ostree-ext 64
  anchor_row "chunkah packing (re-implemented), 64 layers" chunkah 64
  row "treechunk, 64 layers" fresh --max-layers 64
  row "treechunk, 64 layers, --previous v1" previous --max-layers 64
  same_row "treechunk, 64 layers, the same tree built twice" --max-layers 64
  partial_row "treechunk, 64 layers, --previous v1, zstd:chunked partial pull" --max-layers 64
)
{
  echo
  echo "## update efficiency ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "- pair: $v1 -> $v2; $(echo "$ideal_json" | python3 bench/update_measure.py summary)"
  echo
  echo "$table"
} | tee -a bench/results-update.md
