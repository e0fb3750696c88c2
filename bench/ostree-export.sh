#!/usr/bin/env bash
# Benchmarks exporting an OSTree commit (container-encapsulate from an archive repo) against
# exporting the same tree from a directory (build-chunked-oci --rootfs), same options.
# Target: the commit export takes at most 1.3x the directory export's wall time.
# Prints a Markdown table and appends it to bench/results-ostree.md. Exits 0 when a target
# is missed (it is a report); non-zero only when something fails to run.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out"
runs="${RUNS:-5}"
mkdir -p "$out"
bash scripts/setup.sh >&2
source bench/lib.sh
publish_cli

source_tree=$(bash tests/fixtures/debian-tree.sh)
tree="$out/ostree-tree"   # the tree without device nodes, which OSTree cannot hold
if [ ! -f "$tree.done" ] || [ "$(cat "$tree.done")" != "$source_tree" ]; then
  rm -rf "$tree"; cp -a "$source_tree" "$tree"
  find "$tree" \( -type c -o -type b -o -type p -o -type s \) -delete
  echo "$source_tree" > "$tree.done"
fi
repo="$out/export-repo"
rm -rf "$repo"
"$cli" ostree init --repo "$repo" --mode archive >/dev/null
"$cli" ostree commit --repo "$repo" --branch bench/export --timestamp 0 "$tree" >/dev/null
(cd "$tree" && tar -cf - . | cat >/dev/null)

python3 bench/interleave.py --warmup 1 --runs "$runs" --export-json "$out/timing-export.json" \
  --prepare "rm -rf '$out/export-a' '$out/export-b'" \
  "container-encapsulate (archive repo)" "'$cli' compose container-encapsulate --repo '$repo' bench/export oci:'$out/export-a'" \
  "build-chunked-oci (directory)" "'$cli' compose build-chunked-oci --rootfs '$tree' --output oci:'$out/export-b'"

table=$(python3 - "$out/timing-export.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
a = r["container-encapsulate (archive repo)"]; b = r["build-chunked-oci (directory)"]
ratio = a / b
print("| operation | commit export mean s | directory export mean s | ratio | target | result |")
print("|---|---|---|---|---|---|")
print(f"| gzip export of the Debian tree | {a:.2f} | {b:.2f} | {ratio:.2f}x | <= 1.3x | {'PASS' if ratio <= 1.3 else 'FAIL'} |")
PY
)
{
  echo
  echo "## container-encapsulate vs build-chunked-oci ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "- nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); runs alternate, 1 warmup, $runs runs each"
  echo
  echo "$table"
} | tee -a bench/results-ostree.md
