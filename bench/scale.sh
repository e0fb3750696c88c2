#!/usr/bin/env bash
# Scale: builds of trees of about 0.2, 2 and 10 GB (10k, 100k and 500k entries) against
# `tar | zstd -3 -T2` and `tar | pigz -6 -p2`, runs alternating (bench/interleave.py), page
# cache warm; peak RSS of each build; container-encapsulate of an OSTree commit of each tree
# against the directory build of the same tree; and the time before the first layer starts
# (process start to the first layer, from --metrics-file) on the smallest tree.
#
# The trees (bench/scale_tree.py) are the update pair's v1 (Debian minbase + systemd, 10.7k
# entries) plus replicas of its usr/ registered as their own dpkg packages, plus unique
# incompressible and text files; they are made once and cached under $TREECHUNK_CACHE.
# Prints a Markdown report and appends it to bench/results-scale.md. Exits 0 when a target is
# missed (it is a report); non-zero only when something fails to run.
#
# Environment: SIZES (default "s m l"), RUNS (default 3), WARMUP (default 1).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/scale"
cache="${TREECHUNK_CACHE:-/var/cache/treechunk}"
sizes="${SIZES:-s m l}"
runs="${RUNS:-3}"
warmup="${WARMUP:-1}"
mkdir -p "$out"
bash scripts/setup.sh >&2
source bench/lib.sh
require python3 zstd pigz mmdebstrap
publish_cli
mapfile -t pair < <(bash bench/update-pair.sh)
base="${pair[0]}"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# size -> replicas of usr/, MB of unique files
declare -A replicas=([s]=0 [m]=9 [l]=48) unique=([s]=20 [m]=150 [l]=600)
key=$(cat bench/scale_tree.py | sha256sum | cut -c1-8)

tree_of() { # size: the cached tree's path (made when missing)
  local t="$cache/scale-$1-${replicas[$1]}x-${unique[$1]}mb-$key"
  if [ ! -f "$t.done" ]; then
    log "making the $1 tree ($t)"
    python3 bench/scale_tree.py "$base" "$t" --replicas "${replicas[$1]}" --unique-mb "${unique[$1]}"
    # OSTree cannot hold device nodes, fifos or sockets; the directory builds use the same tree.
    find "$t" \( -type c -o -type b -o -type p -o -type s \) -delete
    touch "$t.done"
  fi
  echo "$t"
}

warm() { (cd "$1" && tar -cf - . | cat >/dev/null); }

rows=() rss_rows=() encap_rows=()
for size in $sizes; do
  tree=$(tree_of "$size")
  entries=$(find "$tree" | wc -l)
  echo "$entries" > "$out/entries-$size"
  gb=$(du -sb --apparent-size "$tree" | awk '{printf "%.2f", $1 / 1e9}')
  log "$size: $entries entries, $gb GB; warming the page cache"
  warm "$tree"
  q=$(printf '%q' "$tree")
  o="$out/oci-$size"
  tc() { printf '%q compose build-chunked-oci --rootfs %q --output oci:%q:bench --compression %s --metrics-file %q' "$cli" "$tree" "$o" "$1" "$out/metrics-$size-$1.json"; }
  for comp in zstd gzip; do
    case "$comp" in
      zstd) baseline='tar --sort=name -cf - . | zstd -3 -T2 > /dev/null'; label='tar --sort=name \| zstd -3 -T2' ;;
      gzip) baseline='tar --sort=name -cf - . | pigz -6 -p2 > /dev/null'; label='tar --sort=name \| pigz -6 -p2' ;;
    esac
    log "$size: treechunk $comp against $label (alternating, $runs runs)"
    python3 bench/interleave.py --warmup "$warmup" --runs "$runs" --prepare "rm -rf $(printf '%q' "$o")" \
      --export-json "$out/timing-$size-$comp.json" \
      "treechunk" "$(tc "$comp")" "baseline" "cd $q && $baseline"
    rows+=("$(python3 - "$out/timing-$size-$comp.json" "$out/metrics-$size-$comp.json" "$size" "$entries" "$gb" "$comp" "$label" <<'PY'
import json, sys
timing, metrics, size, entries, gb, comp, label = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(timing))["results"]}
t, b = r["treechunk"], r["baseline"]
m = json.load(open(metrics))
ratio = t["mean"] / b["mean"]
target = 1.15 if comp == "zstd" else 0.6
cpu = (t["user"] + t["system"]) / (b["user"] + b["system"])
rss = t["max_rss_kb"] / 1024
phases = m["phases"]
print(f"| {size} | {int(entries):,} | {gb} | {comp} | {t['mean']:.2f} ± {t['stddev']:.2f} | `{label}` | {b['mean']:.2f} ± {b['stddev']:.2f} "
      f"| {ratio:.2f}x | <= {target}x | {'PASS' if ratio <= target else 'FAIL'} | {cpu:.2f}x | {rss:.0f} "
      f"| {phases.get('scan', 0):.2f} / {phases.get('components', 0):.2f} / {phases.get('plan', 0):.2f} / {phases.get('write', 0):.2f} |")
PY
)")
  done
  rm -rf "$o"

  # container-encapsulate of an OSTree commit of the same tree, against the directory build:
  # from an archive repo (content zlib-compressed, so every byte is inflated) and from a
  # bare-user repo (content as plain files, like the directory; rpm-ostree's compose repo).
  for mode in archive bare-user; do
    repo="$out/repo-$size-$mode"
    if [ ! -f "$repo.done" ] || [ "$(cat "$repo.done")" != "$tree" ]; then
      log "$size: committing the tree to a $mode repo"
      rm -rf "$repo"
      "$cli" ostree init --repo "$repo" --mode "$mode" >/dev/null
      "$cli" ostree commit --repo "$repo" --branch bench/scale --timestamp 0 "$tree" >/dev/null
      echo "$tree" > "$repo.done"
    fi
  done
  # The repos were read last before the bigger trees pushed them out of the page cache.
  warm "$out/repo-$size-archive"
  warm "$out/repo-$size-bare-user"
  warm "$tree"
  log "$size: container-encapsulate (archive, bare-user) against build-chunked-oci (alternating, $runs runs)"
  python3 bench/interleave.py --warmup "$warmup" --runs "$runs" --prepare "rm -rf '$out/enc-a' '$out/enc-u' '$out/enc-b'" \
    --export-json "$out/timing-$size-encap.json" \
    "archive" "'$cli' compose container-encapsulate --repo '$out/repo-$size-archive' --compression zstd bench/scale oci:'$out/enc-a'" \
    "bare-user" "'$cli' compose container-encapsulate --repo '$out/repo-$size-bare-user' --compression zstd bench/scale oci:'$out/enc-u'" \
    "directory" "'$cli' compose build-chunked-oci --rootfs '$tree' --compression zstd --output oci:'$out/enc-b'"
  encap_rows+=("$(python3 - "$out/timing-$size-encap.json" "$size" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b = r["directory"]
for mode in ("archive", "bare-user"):
    a = r[mode]
    ratio = a["mean"] / b["mean"]
    print(f"| {sys.argv[2]} | {mode} | {a['mean']:.2f} ± {a['stddev']:.2f} | {b['mean']:.2f} ± {b['stddev']:.2f} | {ratio:.2f}x | <= 1.1x | {'PASS' if ratio <= 1.1 else 'FAIL'} | {a['max_rss_kb'] / 1024:.0f} |")
PY
)")
  rm -rf "$out/enc-a" "$out/enc-u" "$out/enc-b"
done

# Before the first layer: process start to the first layer's start, on the smallest tree.
first=""
if [[ " $sizes " == *" s "* ]]; then
  tree=$(tree_of s)
  vals=()
  for _ in $(seq 5); do
    rm -rf "$out/first"
    "$cli" compose build-chunked-oci --rootfs "$tree" --output "oci:$out/first:x" --compression zstd --metrics-file "$out/first.json" >/dev/null
    vals+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["first_layer_after_start"])' "$out/first.json")")
  done
  rm -rf "$out/first"
  first=$(python3 - "${vals[@]}" <<'PY'
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
m = statistics.median(v)
print(f"- before the first layer (process start -> first layer, s tree, median of {len(v)}): {m:.3f} s "
      f"(runs {', '.join(f'{x:.3f}' for x in v)}); target <= 0.1 s: {'PASS' if m <= 0.1 else 'FAIL'}")
PY
)
fi

{
  echo
  echo "## scale ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "- nproc: $(nproc); load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg); runs alternate, $warmup warmup, $runs runs each, page cache warm"
  echo "- trees: the update pair's v1 ($base) plus replicas of its usr/ as dpkg packages, plus unique files (bench/scale_tree.py)"
  echo
  echo "| tree | entries | GB | compression | treechunk s | baseline | baseline s | ratio | target | result | CPU ratio | peak RSS MB | scan / components / plan / write s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "| tree | repo mode | container-encapsulate s | build-chunked-oci --rootfs s | ratio | target | result | encapsulate peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${encap_rows[@]}"
  echo
  python3 - "$out" $sizes <<'PY'
import json, sys
out, sizes = sys.argv[1], sys.argv[2:]
pts = []
for s in sizes:
    r = {x["command"]: x for x in json.load(open(f"{out}/timing-{s}-zstd.json"))["results"]}
    pts.append((s, int(open(f"{out}/entries-{s}").read()), r["treechunk"]["max_rss_kb"] * 1024))
# The memory target is for about 500k entries: judged on the largest tree of the run.
s, n, rss = max(pts, key=lambda p: p[1])
if n >= 400_000:
    print(f"- peak RSS at {n:,} entries (zstd): {rss / 2**20:.0f} MB; target <= 200 MB at about 500k: {'PASS' if rss <= 200 * 2**20 else 'FAIL'}")
if len(pts) >= 2:
    (s0, n0, r0), (s1, n1, r1) = pts[0], pts[-1]
    growth = (r1 - r0) / (n1 - n0)
    print(f"- RSS growth {s0} -> {s1} (zstd): {growth:.0f} bytes per entry; target <= 200: {'PASS' if growth <= 200 else 'FAIL'}")
PY
  if [ -n "$first" ]; then echo "$first"; fi
} | tee -a bench/results-scale.md
