#!/usr/bin/env bash
# Benchmarks `compose build-ostree` of the minimal Debian example: a cold build (empty package
# and layer caches, new repo), then a warm rebuild after a small package change (one more
# package) with --cache-dir and --cache-layers. Phases come from the metrics files.
# Target: the warm rebuild spends at most 20% of the cold build's time outside the package
# manager (everything but the "install" phase). Appends a Markdown table to bench/results-compose.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/compose"
bash scripts/setup.sh >&2
source bench/lib.sh
publish_cli
rm -rf "$out"; mkdir -p "$out/warm-tf"
cp examples/debian-minimal/debian.sources "$out/warm-tf/"
cat > "$out/warm-tf/treefile.yaml" <<YAML
include: $(pwd)/examples/debian-minimal/treefile.yaml
packages: [less]
YAML
export SOURCE_DATE_EPOCH=1700000000
run() { local name=$1; shift; /usr/bin/time -f "%e" -o "$out/$name.time" "$cli" compose build-ostree --repo "$out/repo" \
  --output-oci "oci:$out/image:$name" --cache-dir "$out/cache" --cache-layers --metrics-file "$out/$name.json" "$@" >&2; }
run cold examples/debian-minimal/treefile.yaml
run warm "$out/warm-tf/treefile.yaml"
{
echo
echo "## compose build-ostree, minimal Debian example ($(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = []
for name in ("cold", "warm"):
    m = json.load(open(f"{out}/{name}.json")); wall = float(open(f"{out}/{name}.time").read().split()[-1])
    rows.append((name, wall, m["phases"], m))
cold_wall = rows[0][1]
print("| build | wall s | install (package manager) s | outside the package manager s | share of cold wall | layers reused / compressed | packages from cache |")
print("|---|---|---|---|---|---|---|")
for name, wall, ph, m in rows:
    outside = wall - ph.get("install", 0)
    print(f"| {name} | {wall:.1f} | {ph.get('install', 0):.1f} | {outside:.1f} | {outside / cold_wall:.0%} | {m.get('layers_reused')} / {m.get('layers_compressed')} | {m.get('packages_from_cache')} |")
warm_outside = rows[1][1] - rows[1][2].get("install", 0)
print()
print(f"Phases (s): " + "; ".join(f"{n}: " + ", ".join(f"{k} {v:.2f}" for k, v in ph.items()) for n, _, ph, _ in rows))
print()
print(f"Target: warm time outside the package manager <= 20% of the cold build: {warm_outside / cold_wall:.0%} -> {'PASS' if warm_outside / cold_wall <= 0.2 else 'FAIL'}")
PY
} | tee -a bench/results-compose.md
