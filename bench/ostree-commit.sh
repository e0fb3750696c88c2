#!/usr/bin/env bash
# Benchmarks `treechunk ostree commit` against `ostree commit` on the real Debian tree, into fresh
# archive and fresh bare-user repositories (each run starts from an empty repository made by
# --prepare). Prints a Markdown table and appends it to bench/results-ostree.md. Exits 0 even
# when a target is missed (it is a report); non-zero only when something fails to run.
#
# Targets: archive <= 0.7x ostree's wall time, bare-user <= 1.0x.
# Environment: RUNS (default 5), WARMUP (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out="$repo/bench/.out"          # bench-private scratch (CLI, repos, tree copy); not committed
runs="${RUNS:-5}"
warmup="${WARMUP:-1}"
mkdir -p "$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

source bench/lib.sh

require ostree python3
publish_cli

# The Debian tree has device nodes in /dev, which `ostree commit` refuses and cannot skip; both
# tools commit the same copy without them, so they do exactly the same work.
source_tree=$(bash tests/fixtures/debian-tree.sh)
tree="$out/ostree-tree"
if [ ! -f "$tree.done" ] || [ "$(cat "$tree.done")" != "$source_tree" ]; then
  log "copying $source_tree without special files to $tree"
  rm -rf "$tree"
  cp -a "$source_tree" "$tree"
  find "$tree" \( -type c -o -type b -o -type p -o -type s \) -delete
  echo "$source_tree" > "$tree.done"
fi
log "warming the page cache for $tree"
(cd "$tree" && tar -cf - . | cat >/dev/null)

repos="$out/ostree-bench"
mkdir -p "$repos"
q() { printf '%q' "$1"; }
ts=1700000000
for mode in archive bare-user; do
  tc_repo="$repos/treechunk-$mode"
  os_repo="$repos/ostree-$mode"
  log "timing (alternating runs): $mode"
  python3 bench/interleave.py --warmup "$warmup" --runs "$runs" \
    --export-json "$out/timing-ostree-$mode.json" \
    --prepare-for "treechunk $mode" "rm -rf $(q "$tc_repo") && $(q "$cli") ostree init --repo $(q "$tc_repo") --mode $mode" \
    --prepare-for "ostree $mode" "rm -rf $(q "$os_repo") && ostree init --repo=$(q "$os_repo") --mode=$mode" \
    "treechunk $mode" "$(q "$cli") ostree commit --repo $(q "$tc_repo") --branch=bench --timestamp=@$ts $(q "$tree")" \
    "ostree $mode" "ostree --repo=$(q "$os_repo") commit --branch=bench --timestamp=@$ts $(q "$tree")"
  # The point of the comparison: both wrote the same commit.
  tc_sum=$(cat "$tc_repo/refs/heads/bench")
  os_sum=$(cat "$os_repo/refs/heads/bench")
  [ "$tc_sum" = "$os_sum" ] || { echo "bench: $mode commits differ: treechunk $tc_sum, ostree $os_sum" >&2; exit 1; }
  echo "$mode $(du -sb "$tc_repo/objects" | cut -f1) $(du -sb "$os_repo/objects" | cut -f1) $tc_sum" > "$out/ostree-sizes-$mode.txt"
done

cpu=$(awk -F: '/model name/ {sub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
python3 - "$out" "$runs" "$warmup" "$(nproc)" "$cpu" "$(dotnet --version)" "$(ostree --version | awk -F"'" '/Version/ {print $2}')" \
  "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$tree" "$(du -sb "$tree" | cut -f1)" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  > "$out/results-ostree.md" <<'PY'
import json, sys
out, runs, warmup, nproc, cpu, dotnet, ostree, date, tree, tree_bytes, load0, load1 = sys.argv[1:]
MB = 1024 * 1024
print(f"## treechunk ostree commit vs ostree commit ({date})\n")
print(f"- nproc: {nproc}; CPU: {cpu}; dotnet {dotnet}; ostree {ostree}")
print(f"- load average before / after: {load0} / {load1}"
      + ("  **(machine was busy: wall times are noisy)**" if float(load0.split()[0]) > 0.5 * int(nproc) else ""))
print(f"- tree: `{tree}` ({int(tree_bytes)/MB:.0f} MB, Debian bookworm without /dev nodes); runs of the two tools alternate, warmup {warmup}, {runs} runs each,"
      " page cache warm, each run into a fresh repository; both tools write the same commit checksum\n")
print("| mode | treechunk mean s | ostree mean s | ratio | target | result | treechunk CPU s | ostree CPU s | treechunk MB | ostree MB |")
print("|---|---|---|---|---|---|---|---|---|---|")
for mode, limit in (("archive", 0.7), ("bare-user", 1.0)):
    tc, os_ = json.load(open(f"{out}/timing-ostree-{mode}.json"))["results"]
    ratio = tc["mean"] / os_["mean"]
    _, tcb, osb, _ = open(f"{out}/ostree-sizes-{mode}.txt").read().split()
    print(f"| {mode} | {tc['mean']:.2f} ± {tc['stddev']:.2f} | {os_['mean']:.2f} ± {os_['stddev']:.2f} | {ratio:.2f}x | <= {limit}x | "
          f"{'PASS' if ratio <= limit else 'FAIL'} | {tc['user'] + tc['system']:.2f} | {os_['user'] + os_['system']:.2f} | "
          f"{int(tcb)/MB:.1f} | {int(osb)/MB:.1f} |")
print()
PY
cat "$out/results-ostree.md" >> bench/results-ostree.md
cat "$out/results-ostree.md"
