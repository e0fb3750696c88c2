#!/usr/bin/env bash
# Benchmarks treechunk's build-chunked-oci against tar|compressor baselines on the real Debian
# tree (DESIGN.md section 6), and measures peak RSS on that tree and on a much larger one.
# Prints a Markdown report and writes it to bench/results.md. Exits 0 even when a target is
# missed (it is a report); non-zero only when something fails to run.
#
# Environment: RUNS (default 5), WARMUP (default 1), BIG_FILES (default 4), BIG_FILE_MB (default 200).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out="$repo/bench/.out"          # bench-private scratch (CLI, outputs, big tree); not committed
runs="${RUNS:-5}"
warmup="${WARMUP:-1}"
big_files="${BIG_FILES:-4}"
big_file_mb="${BIG_FILE_MB:-200}"
mkdir -p "$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

source bench/lib.sh

# 1. Peers, restore, Release publish of the CLI.
log "setup"
bash scripts/setup.sh
require pigz zstd python3 /usr/bin/time
publish_cli

# 2. The real Debian tree, with its data in the page cache. GNU tar does not read file data
#    when its archive is /dev/null, so everything that must read the files pipes through cat.
tree=$(bash tests/fixtures/debian-tree.sh)
warm() { (cd "$1" && tar -cf - . | cat >/dev/null); }
log "warming the page cache for $tree"
warm "$tree"

tc_out="$out/oci-bench"
tc() { # treechunk command line for a compression, as one shell string
  printf '%q compose build-chunked-oci --rootfs %q --output oci:%q:bench --compression %s' \
    "$cli" "$1" "$tc_out" "$2"
}
qtree=$(printf '%q' "$tree")

# 3. Side by side timings.
bench_pair() { # name compression baseline-pipeline
  local name="$1" comp="$2" base="$3"
  log "timing (alternating runs): $name"
  python3 bench/interleave.py --warmup "$warmup" --runs "$runs" \
    --prepare "rm -rf $(printf '%q' "$tc_out")" \
    --export-json "$out/timing-$name.json" \
    "treechunk $comp" "$(tc "$tree" "$comp")" \
    "baseline $name" "cd $qtree && $base"
}
bench_pair zstd zstd 'tar --sort=name -cf - . | zstd -3 -T2 > /dev/null'
bench_pair gzip gzip 'tar --sort=name -cf - . | pigz -6 -p2 > /dev/null'
bench_pair none none 'tar --sort=name -cf - . | cat > /dev/null'

# Output sizes (one run each): treechunk's blobs vs the baseline's stream.
sizes="$out/sizes.txt"; : > "$sizes"
for comp in zstd gzip none; do
  rm -rf "$tc_out"
  "$cli" compose build-chunked-oci --rootfs "$tree" --output "oci:$tc_out:bench" --compression "$comp" \
    --metrics-file "$out/metrics-$comp.json" >/dev/null
  tc_bytes=$(du -sb --apparent-size "$tc_out/blobs" | cut -f1)
  case "$comp" in
    zstd) base_bytes=$(cd "$tree" && tar --sort=name -cf - . | zstd -3 -T2 | wc -c) ;;
    gzip) base_bytes=$(cd "$tree" && tar --sort=name -cf - . | pigz -6 -p2 | wc -c) ;;
    none) base_bytes=$(cd "$tree" && tar --sort=name -cf - . | wc -c) ;;
  esac
  echo "$comp $tc_bytes $base_bytes" >> "$sizes"
done
rm -rf "$tc_out"

# 4. Peak RSS on the Debian tree and on the Debian tree plus large incompressible files.
big="$out/big-tree"
if [ ! -f "$big.done" ]; then
  log "building the big tree ($big_files x $big_file_mb MB of random data on top of the Debian tree)"
  rm -rf "$big"
  cp -a "$tree" "$big"
  mkdir -p "$big/opt/bench"
  for i in $(seq 1 "$big_files"); do
    head -c "$((big_file_mb * 1024 * 1024))" /dev/urandom > "$big/opt/bench/blob$i.bin"
  done
  touch "$big.done"
fi
log "warming the page cache for $big"
warm "$big"
rss="$out/rss.txt"; : > "$rss"
for t in debian big; do
  dir="$tree"; [ "$t" = big ] && dir="$big"
  tree_bytes=$(du -sb --apparent-size "$dir" | cut -f1)
  for comp in zstd gzip; do
    rm -rf "$tc_out"
    log "peak RSS: $t tree, $comp"
    /usr/bin/time -v -o "$out/time-$t-$comp.txt" \
      "$cli" compose build-chunked-oci --rootfs "$dir" --output "oci:$tc_out:bench" --compression "$comp" >/dev/null
    kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/time-$t-$comp.txt")
    wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$out/time-$t-$comp.txt")
    echo "$t $comp $tree_bytes $kb $wall" >> "$rss"
  done
done
rm -rf "$tc_out"

# 5. Report.
cpu=$(awk -F: '/model name/ {sub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
python3 - "$out" "$runs" "$(nproc)" "$cpu" "$(dotnet --version)" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
  "$tree" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$out/results.md" <<'PY'
import json, sys
out, runs, nproc, cpu, dotnet, date, tree, load0, load1 = sys.argv[1:]
targets = {"zstd": ("tar --sort=name \\| zstd -3 -T2", 1.3),
           "gzip": ("tar --sort=name \\| pigz -6 -p2", 1.1),
           "none": ("tar --sort=name \\| cat", None)}
sizes = {l.split()[0]: (int(l.split()[1]), int(l.split()[2])) for l in open(f"{out}/sizes.txt")}
MB = 1024 * 1024
print("# treechunk benchmark\n")
print(f"- date: {date}\n- nproc: {nproc}\n- CPU: {cpu}\n- dotnet: {dotnet}")
print(f"- load average before / after (1, 5, 15 min): {load0} / {load1}"
      + ("  **(machine was busy: wall times are noisy; CPU s = user+sys is steadier)**" if float(load0.split()[0]) > 0.5 * int(nproc) else ""))
print(f"- tree: `{tree}` (runs of the two commands alternate; warmup 1, {runs} runs each, page cache warm)\n")
print("| operation | treechunk mean s | baseline | baseline mean s | ratio | target | result | treechunk CPU s | baseline CPU s | CPU ratio | treechunk MB out | baseline MB out |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for comp, (base, limit) in targets.items():
    r = json.load(open(f"{out}/timing-{comp}.json"))["results"]
    tc, bl = r[0], r[1]
    ratio = tc["mean"] / bl["mean"]
    verdict = "n/a" if limit is None else ("PASS" if ratio <= limit else "FAIL")
    target = "report only" if limit is None else f"<= {limit}x"
    so, sb = sizes[comp]
    print(f"| build --compression {comp} | {tc['mean']:.2f} ± {tc['stddev']:.2f} | `{base}` | "
          f"{bl['mean']:.2f} ± {bl['stddev']:.2f} | {ratio:.2f}x | {target} | {verdict} | "
          f"{tc['user'] + tc['system']:.2f} | {bl['user'] + bl['system']:.2f} | "
          f"{(tc['user'] + tc['system']) / (bl['user'] + bl['system']):.2f}x | {so/MB:.1f} | {sb/MB:.1f} |")
rows = [l.split() for l in open(f"{out}/rss.txt")]
rss = {(t, c): (int(b), int(kb) / 1024, w) for t, c, b, kb, w in rows}
print("\n| build | tree | tree MB | peak RSS MB | wall | target | result |")
print("|---|---|---|---|---|---|---|")
for (t, c), (b, mb, w) in rss.items():
    print(f"| --compression {c} | {t} | {b/MB:.0f} | {mb:.0f} | {w} | < 300 MB | {'PASS' if mb < 300 else 'FAIL'} |")
print()
for c in ("zstd", "gzip"):
    (b1, m1, _), (b2, m2, _) = rss[("debian", c)], rss[("big", c)]
    growth = m2 - m1
    # "Not growing with tree size": allow 10% or 20 MB of noise for a tree about 5x larger.
    ok = growth <= max(20.0, 0.10 * m1)
    print(f"- {c}: tree {b1/MB:.0f} MB -> {b2/MB:.0f} MB, peak RSS {m1:.0f} MB -> {m2:.0f} MB "
          f"({growth:+.0f} MB): {'PASS' if ok else 'FAIL'} (target: no growth beyond noise, 10% or 20 MB)")
PY
cp "$out/results.md" bench/results.md
cat bench/results.md
