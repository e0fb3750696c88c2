#!/usr/bin/env bash
# Partial pull on the real Debian update pair (bench/update-pair.sh): v1 and v2 are built with
# --compression zstd:chunked at 64 layers (v2 with --previous v1), pushed to a local
# docker-registry on a free loopback port, v1 is pulled into a layout, then v2 into the same
# layout. The download is what the v2 pull fetched for layers v1 lacks, as the client counts it
# (partial_bytes_fetched) and as the registry's access log counts it (206/200 bodies of those
# blobs); it is compared with the ideal (a zstd -3 tar of only the new and changed entries) and
# with downloading the changed zstd:chunked layers whole. Prints a Markdown table and appends it
# to bench/results-partial.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(pwd)/bench/.out/partial"
rm -rf "$out" && mkdir -p "$out/home"
bash scripts/setup.sh >&2
source bench/lib.sh
require python3 zstd mmdebstrap docker-registry
publish_cli
mapfile -t pair < <(bash bench/update-pair.sh)
v1="${pair[0]}" v2="${pair[1]}"
export HOME="$out/home" XDG_CACHE_HOME="$out/home/.cache" XDG_CONFIG_HOME="$out/home/.config" CONTAINERS_REGISTRIES_CONF="$out/none.conf"

log "measuring the ideal update"
ideal=$(python3 bench/update_measure.py ideal "$v1" "$v2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ideal_bytes"])')

log "building v1 and v2 (zstd:chunked, 64 layers, v2 --previous v1)"
SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v1" --output "oci:$out/built:v1" --compression zstd:chunked --max-layers 64 >/dev/null
SOURCE_DATE_EPOCH=1700000000 "$cli" compose build-chunked-oci --rootfs "$v2" --output "oci:$out/built:v2" --compression zstd:chunked --max-layers 64 --previous "oci:$out/built:v1" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$out/registry.yml" <<EOF
version: 0.1
log:
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $out/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$out/registry.yml" > "$out/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

"$cli" oci push --insecure "oci:$out/built:v1" "docker://127.0.0.1:$port/os/deb:v1" >/dev/null
"$cli" oci push --insecure "oci:$out/built:v2" "docker://127.0.0.1:$port/os/deb:v2" >/dev/null
"$cli" oci pull --insecure "docker://127.0.0.1:$port/os/deb:v1" "oci:$out/local:v1" >/dev/null
mark=$(wc -l < "$out/registry.log")
start=$(date +%s.%N)
"$cli" oci pull --insecure --json "docker://127.0.0.1:$port/os/deb:v2" "oci:$out/local:v2" > "$out/pull-v2.json"
end=$(date +%s.%N)
tail -n +"$((mark + 1))" "$out/registry.log" > "$out/registry-v2.log"
"$cli" oci verify-layers "oci:$out/local:v2" >/dev/null

table=$(python3 - "$out" "$ideal" "$start" "$end" <<'EOF'
import json, re, sys
out, ideal, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def layers(tag):
    idx = json.load(open(f"{out}/built/index.json"))
    d = next(m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)["digest"][7:]
    return json.load(open(f"{out}/built/blobs/sha256/{d}"))["layers"]
v1 = {l["digest"] for l in layers("v1")}
v2 = layers("v2")
changed = [l for l in v2 if l["digest"] not in v1]
whole = sum(l["size"] for l in changed)
pull = json.load(open(f"{out}/pull-v2.json"))
client = pull["partial_bytes_fetched"]
partial = {p["digest"] for p in pull["partial_layers"]}
# Combined log format: "GET /v2/os/deb/blobs/sha256:HEX HTTP/1.1" STATUS BYTES
logged = 0
for line in open(f"{out}/registry-v2.log"):
    m = re.search(r'"GET /v2/[^ ]*/blobs/(sha256:[0-9a-f]{64}) HTTP/1\.1" (\d+) (\d+)', line)
    if m and m.group(1) in partial: logged += int(m.group(3))
requests = sum(p["requests"] for p in pull["partial_layers"])
mb = lambda b: f"{b / 1e6:.1f}"
print("| download of v2 after v1 | MB | / ideal |")
print("|---|---|---|")
print(f"| ideal (zstd -3 tar of the new and changed entries) | {mb(ideal)} | 1.00x |")
print(f"| changed zstd:chunked layers, whole ({len(changed)} of {len(v2)}) | {mb(whole)} | {whole / ideal:.2f}x |")
print(f"| partial pull, counted by treechunk ({requests} range requests) | {mb(client)} | {client / ideal:.2f}x |")
print(f"| partial pull, counted by the registry's access log | {mb(logged)} | {logged / ideal:.2f}x |")
print()
print(f"- bytes: ideal {ideal}, fetched {client} (client) = {logged} (registry log), changed layers whole {whole}.")
print()
if logged != client: sys.exit(f"bench: the client counted {client} bytes, the registry's log {logged}")
print(f"- v2 is {mb(sum(l['size'] for l in v2))} MB in zstd:chunked; the pull of v2 took {end - start:.2f} s; "
      f"{len(partial)} layers were rebuilt, every blob verified (oci verify-layers).")
EOF
)
echo "$table"
{ echo; echo "## $(date -u +%Y-%m-%d) partial pull, $(basename "$(dirname "$v1")")"; echo; echo "$table"; } >> bench/results-partial.md
