#!/usr/bin/env bash
# Benchmarks looking inside a 1 GB oci-archive: `treechunk oci inspect` and `oci layers`, which
# read the archive in place (tar headers, then index, manifest and config at their offsets),
# against unpacking the archive (`tar -xf`, what reading an archive used to cost before
# anything could be looked at). Page cache warm, runs alternate (bench/interleave.py).
# Prints a Markdown table and appends it to bench/results-archive.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out"
runs="${RUNS:-5}"
size_mb="${ARCHIVE_MB:-1024}"
mkdir -p "$out"
bash scripts/setup.sh >&2
source bench/lib.sh
require tar python3
publish_cli

archive="$out/big-$size_mb.tar"
if [ ! -f "$archive.done" ]; then
  log "making a ${size_mb} MB oci-archive (64 layers of incompressible data, uncompressed layers)"
  rm -rf "$out/big-rootfs" "$out/big-layout" "$archive"
  mkdir -p "$out/big-rootfs/data"
  # Deterministic incompressible content: 4 MB files of a seeded stream.
  python3 - "$out/big-rootfs/data" "$size_mb" <<'PY'
import hashlib, os, sys
root, total = sys.argv[1], int(sys.argv[2])
for i in range(total // 4):
    seed = hashlib.sha256(str(i).encode()).digest()
    block = b"".join(hashlib.sha256(seed + j.to_bytes(4, "big")).digest() for j in range(2048))  # 64 KiB
    with open(os.path.join(root, f"f{i:05d}"), "wb") as f:
        for _ in range(64):
            f.write(block)
PY
  "$cli" compose build-chunked-oci --rootfs "$out/big-rootfs" --output "oci:$out/big-layout:big" --compression none --chunk-size 16M >/dev/null
  "$cli" oci copy "oci:$out/big-layout:big" "oci-archive:$archive" >/dev/null
  rm -rf "$out/big-rootfs" "$out/big-layout"
  touch "$archive.done"
fi
bytes=$(stat -c %s "$archive")
cat "$archive" >/dev/null   # warm the page cache for every contender alike

python3 bench/interleave.py --warmup 1 --runs "$runs" --export-json "$out/timing-archive.json" \
  --prepare "rm -rf '$out/unpacked'" \
  "treechunk oci inspect" "'$cli' oci inspect oci-archive:'$archive' >/dev/null" \
  "treechunk oci layers" "'$cli' oci layers oci-archive:'$archive' >/dev/null" \
  "tar -xf (unpack)" "mkdir -p '$out/unpacked' && tar -xf '$archive' -C '$out/unpacked'"
rm -rf "$out/unpacked"

table=$(python3 - "$out/timing-archive.json" "$bytes" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
mb = int(sys.argv[2]) / 1e6
base = r["tar -xf (unpack)"]["mean"]
print(f"| operation on a {mb:.0f} MB oci-archive | mean s | vs unpacking it | CPU s |")
print("|---|---|---|---|")
for name in ["treechunk oci inspect", "treechunk oci layers", "tar -xf (unpack)"]:
    x = r[name]
    print(f"| {name} | {x['mean']:.3f} ± {x['stddev']:.3f} | {x['mean'] / base:.3f}x | {x['user'] + x['system']:.2f} |")
PY
)
{
  echo
  echo "## oci-archive read in place ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "- nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); runs alternate, 1 warmup, $runs runs each"
  echo
  echo "$table"
} | tee -a bench/results-archive.md
