#!/usr/bin/env bash
# Benchmarks registry transfer: push and pull of the Debian image (64 layers, zstd) to and from
# a local docker-registry, treechunk against `skopeo copy` between the same endpoints, runs
# alternating (bench/interleave.py). Each first push goes to a freshly emptied registry, and
# neither tool's blob-location cache is kept between runs, so nothing is mounted or skipped.
# Also: a re-push of the unchanged image against the first push, and peak RSS of push and pull
# for the Debian image and for one with 4 x 200 MB of extra incompressible layers.
# Prints a Markdown table and appends it to bench/results-registry.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out"
runs="${RUNS:-5}"
mkdir -p "$out"
bash scripts/setup.sh >&2
source bench/lib.sh
require docker-registry skopeo python3 /usr/bin/time
publish_cli

tree=$(bash tests/fixtures/debian-tree.sh)
image="$out/registry-image"
if [ ! -f "$image.done" ]; then
  rm -rf "$image"
  "$cli" compose build-chunked-oci --rootfs "$tree" --output "oci:$image:bench" --compression zstd >/dev/null
  touch "$image.done"
fi
big="$out/registry-big"
if [ ! -f "$big.done" ]; then
  rm -rf "$out/registry-big-tree" "$big"
  cp -a "$tree" "$out/registry-big-tree"
  mkdir -p "$out/registry-big-tree/opt/bench"
  for i in 1 2 3 4; do head -c $((200 << 20)) /dev/urandom > "$out/registry-big-tree/opt/bench/blob$i.bin"; done
  "$cli" compose build-chunked-oci --rootfs "$out/registry-big-tree" --output "oci:$big:bench" --compression zstd >/dev/null
  rm -rf "$out/registry-big-tree"
  touch "$big.done"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
store="$out/registry-store"
conf="$out/registry.yml"
cat > "$conf" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $store }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YML
pidfile="$out/registry.pid"
# A script, not a function: interleave.py runs --prepare in its own bash.
cat > "$out/start-registry.sh" <<SH
[ -f "$pidfile" ] && kill "\$(cat "$pidfile")" 2>/dev/null && sleep 0.2 || true
rm -rf "$store"
docker-registry serve "$conf" >/dev/null 2>&1 & echo \$! > "$pidfile"
for _ in \$(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && exit 0; sleep 0.05; done
echo "bench: registry did not start" >&2; exit 2
SH
start_registry() { bash "$out/start-registry.sh"; }
trap '[ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true' EXIT
export HOME="$out/registry-home" XDG_CACHE_HOME="$out/registry-home/cache"
mkdir -p "$HOME"
fresh="bash '$out/start-registry.sh'; rm -rf '$XDG_CACHE_HOME' '$HOME/.local/share/containers/cache' /var/lib/containers/cache/blob-info-cache-v1.*"
reg="127.0.0.1:$port"
tc_push="'$cli' oci push --insecure oci:'$image':bench docker://$reg/bench/os:1"
sk_push="skopeo copy -q --dest-tls-verify=false oci:'$image':bench docker://$reg/bench/os:1"
start_registry

log "timing first pushes (alternating, registry emptied before each)"
python3 bench/interleave.py --warmup 1 --runs "$runs" --export-json "$out/timing-push.json" --prepare "$fresh" \
  "treechunk push" "$tc_push" "skopeo push" "$sk_push"

log "timing pulls"
start_registry
eval "$tc_push" >/dev/null
python3 bench/interleave.py --warmup 1 --runs "$runs" --export-json "$out/timing-pull.json" --prepare "rm -rf '$out/pulled'" \
  "treechunk pull" "'$cli' oci pull --insecure docker://$reg/bench/os:1 oci:'$out/pulled':1" \
  "skopeo pull" "skopeo copy -q --src-tls-verify=false docker://$reg/bench/os:1 oci:'$out/pulled':1"

log "timing a re-push of the unchanged image against a first push"
python3 bench/interleave.py --warmup 1 --runs "$runs" --export-json "$out/timing-repush.json" \
  --prepare-for "first push" "$fresh" --prepare "true" \
  "first push" "$tc_push" "re-push" "$tc_push"

log "peak RSS"
rss() { /usr/bin/time -f %M bash -c "$1 >/dev/null" 2>&1 | tail -1; }
start_registry
rss_push_small=$(rss "$tc_push")
rss_pull_small=$(rm -rf "$out/pulled"; rss "'$cli' oci pull --insecure docker://$reg/bench/os:1 oci:'$out/pulled':1")
rss_push_big=$(rss "'$cli' oci push --insecure oci:'$big':bench docker://$reg/bench/big:1")
rss_pull_big=$(rm -rf "$out/pulled"; rss "'$cli' oci pull --insecure docker://$reg/bench/big:1 oci:'$out/pulled':1")
rm -rf "$out/pulled"
small_mb=$(du -sm "$image/blobs" | cut -f1); big_mb=$(du -sm "$big/blobs" | cut -f1)

table=$(python3 - "$out" <<PY
import json, sys
out = sys.argv[1]
def r(name): return {x["command"]: x for x in json.load(open(f"{out}/timing-{name}.json"))["results"]}
push, pull, repush = r("push"), r("pull"), r("repush")
def row(op, a, b, target, limit):
    ratio = a["mean"] / b["mean"]
    return f"| {op} | {a['mean']:.2f} ± {a['stddev']:.2f} | {b['mean']:.2f} ± {b['stddev']:.2f} | {ratio:.2f}x | {target} | {'PASS' if ratio <= limit else 'FAIL'} |"
print("| operation | treechunk s | reference s | ratio | target | result |")
print("|---|---|---|---|---|---|")
print(row("push (Debian image, 64 layers, empty registry) vs skopeo copy", push["treechunk push"], push["skopeo push"], "<= 1.0x", 1.0))
print(row("pull vs skopeo copy", pull["treechunk pull"], pull["skopeo pull"], "<= 1.0x", 1.0))
print(row("re-push of the unchanged image vs first push", repush["re-push"], repush["first push"], "<= 0.2x", 0.2))
PY
)
{
  echo
  echo "## registry push and pull ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  echo
  echo "- nproc: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg); runs alternate, 1 warmup, $runs runs each; docker-registry on 127.0.0.1"
  echo
  echo "$table"
  echo
  echo "| image | blobs MB | push peak RSS MB | pull peak RSS MB |"
  echo "|---|---|---|---|"
  echo "| Debian | $small_mb | $((rss_push_small / 1024)) | $((rss_pull_small / 1024)) |"
  echo "| Debian + 800 MB | $big_mb | $((rss_push_big / 1024)) | $((rss_pull_big / 1024)) |"
} | tee -a bench/results-registry.md
