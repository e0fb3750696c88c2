#!/usr/bin/env bash
# Delta updates on the real Debian update pair (bench/update-pair.sh): v1 and v2 built with
# --compression zstd at 64 layers (v2 --previous v1), pushed to a local docker-registry, the
# deltas made from the registry images (oci delta create --push, level 19), v1 pulled into a
# layout. Then v2 is pulled into copies of that layout through a loopback proxy limited to
# 100 Mbit/s and 1 Gbit/s (bench/rate_proxy.py), with deltas and with --no-deltas (the changed
# layers downloaded whole), runs alternating; plus with deltas straight from the registry (the
# rebuild's own cost). Wall time and peak RSS from GNU time. Prints a Markdown table and appends
# it to bench/results-delta.md. RUNS=N (default 3).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/delta"
rm -rf "$out" && mkdir -p "$out/home"
runs="${RUNS:-3}"
bash scripts/setup.sh >&2
source bench/lib.sh
require python3 docker-registry /usr/bin/time
publish_cli
mapfile -t pair < <(bash bench/update-pair.sh)
v1="${pair[0]}" v2="${pair[1]}"
isolate_home "$out"

log "measuring the ideal update"
ideal=$(python3 bench/update_measure.py ideal "$v1" "$v2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ideal_bytes"])')

log "building v1 and v2 (zstd, 64 layers, v2 --previous v1)"
SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v1" --output "oci:$out/built:v1" --compression zstd --max-layers 64 >/dev/null
SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v2" --output "oci:$out/built:v2" --compression zstd --max-layers 64 --previous "oci:$out/built:v1" >/dev/null

start_registry "$out/registry"
"$cli" oci push --insecure "oci:$out/built:v1" "docker://$registry/os/deb:v1" >/dev/null
"$cli" oci push --insecure "oci:$out/built:v2" "docker://$registry/os/deb:v2" >/dev/null
log "making the deltas"
/usr/bin/time -f "%e %M" -o "$out/create.time" "$cli" oci delta create --insecure --push --json \
  "docker://$registry/os/deb:v1" "docker://$registry/os/deb:v2" > "$out/create.json"
"$cli" oci pull --insecure "docker://$registry/os/deb:v1" "oci:$out/v1-only:v1" >/dev/null

port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A proxy
for rate in 100000000 1000000000; do
  p=$(port_of)
  python3 bench/rate_proxy.py "$p" "$registry" "$rate" > "$out/proxy-$rate.log" 2>&1 &
  pids+=($!)
  proxy[$rate]="127.0.0.1:$p"
done
trap 'kill $registry_pid ${pids[*]} 2>/dev/null || true' EXIT
sleep 0.5

# one_pull NAME HOST [FLAGS...]: v2 into a fresh copy of the v1 layout; appends "NAME seconds rss_kb bytes_received" to $out/runs.txt.
one_pull() {
  local name="$1" host="$2"; shift 2
  rm -rf "$out/work" && cp -a "$out/v1-only" "$out/work"
  /usr/bin/time -f "%e %M" -o "$out/t" "$cli" oci pull --insecure --json "$@" "docker://$host/os/deb:v2" "oci:$out/work:v2" > "$out/pull.json"
  "$cli" oci verify-layers "oci:$out/work:v2" >/dev/null
  echo "$name $(cat "$out/t") $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_received"])' "$out/pull.json")" >> "$out/runs.txt"
}
: > "$out/runs.txt"
one_pull warmup "$registry"
: > "$out/runs.txt"
for i in $(seq "$runs"); do
  log "run $i of $runs"
  one_pull "deltas-local" "$registry"
  for rate in 100000000 1000000000; do
    one_pull "deltas-$rate" "${proxy[$rate]}"
    one_pull "whole-$rate" "${proxy[$rate]}" --no-deltas
  done
done

table=$(python3 - "$ideal" "$out/create.json" "$out/create.time" "$out/runs.txt" <<'EOF2'
import json, statistics, sys
ideal = int(sys.argv[1])
c = json.load(open(sys.argv[2]))
ctime, crss = open(sys.argv[3]).read().split()
runs = {}
for line in open(sys.argv[4]):
    name, s, rss, got = line.split()
    runs.setdefault(name, []).append((float(s), int(rss), int(got)))
def row(label, name):
    r = runs[name]
    s = [x[0] for x in r]
    sd = statistics.stdev(s) if len(s) > 1 else 0.0
    return f"| {label} | {statistics.mean(s):.2f} ± {sd:.2f} | {max(x[1] for x in r) / 1024:.0f} | {r[0][2] / 1e6:.2f} | {r[0][2] / ideal:.2f}x |"
print("| v2 after v1 | wall s | peak RSS MB | MB fetched | / ideal |")
print("|---|---|---|---|---|")
print(row("deltas, no rate limit (the rebuild's own cost)", "deltas-local"))
for rate, label in ((100000000, "100 Mbit/s"), (1000000000, "1 Gbit/s")):
    print(row(f"deltas at {label}", f"deltas-{rate}"))
    print(row(f"changed layers whole (--no-deltas) at {label}", f"whole-{rate}"))
print()
print(f"- ideal (zstd -3 tar of the new and changed entries) {ideal / 1e6:.2f} MB; changed layers whole {c['new_layer_bytes'] / 1e6:.2f} MB; "
      f"{len(c['deltas'])} deltas {c['delta_bytes'] / 1e6:.2f} MB ({c['delta_bytes'] / ideal:.2f}x the ideal), {len(c['skipped'])} layers without one.")
print(f"- making the deltas (oci delta create, level 19, from the registry): {float(ctime):.1f} s, peak RSS {int(crss) / 1024:.0f} MB.")
print(f"- MB fetched is the client's bytes_received: manifests, config, the delta artifact and the deltas (or the layers); every pulled v2 passed oci verify-layers.")
EOF2
)
echo "$table"
{ echo; echo "## $(date -u +%Y-%m-%d) delta updates, $(basename "$(dirname "$v1")"), $runs runs"; echo; echo "$table"; } >> bench/results-delta.md
