"""What the partial pull of v2 after v1 cost (bench/lib.sh partial_pull).

Usage: partial_measure.py LAYOUT PULL_JSON REGISTRY_LOG SECONDS

LAYOUT holds v1 and v2 (the layout the pulls went to).

Prints JSON: layers (of v2), v2_bytes, changed (layers v1 lacks), whole (their compressed
bytes), client (partial_bytes_fetched as treechunk counts it), logged (the bodies of GETs of
those blobs in the registry's access log), requests, rebuilt (layers), seconds. Exits non-zero
when the client's count and the registry's disagree.
"""
import json
import re
import sys

layout, pull_json, registry_log, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])


def layers(tag):
    idx = json.load(open(f"{layout}/index.json"))
    d = next(m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)["digest"][7:]
    return json.load(open(f"{layout}/blobs/sha256/{d}"))["layers"]


v1 = {l["digest"] for l in layers("v1")}
v2 = layers("v2")
changed = [l for l in v2 if l["digest"] not in v1]
pull = json.load(open(pull_json))
partial = {p["digest"] for p in pull["partial_layers"]}
# Combined log format: "GET /v2/NAME/blobs/sha256:HEX HTTP/1.1" STATUS BYTES
logged = 0
for line in open(registry_log):
    m = re.search(r'"GET /v2/[^ ]*/blobs/(sha256:[0-9a-f]{64}) HTTP/1\.1" (\d+) (\d+)', line)
    if m and m.group(1) in partial:
        logged += int(m.group(3))
result = {
    "layers": len(v2),
    "v2_bytes": sum(l["size"] for l in v2),
    "changed": len(changed),
    "whole": sum(l["size"] for l in changed),
    "client": pull["partial_bytes_fetched"],
    "logged": logged,
    "requests": sum(p["requests"] for p in pull["partial_layers"]),
    "rebuilt": len(partial),
    "seconds": seconds,
}
print(json.dumps(result))
if logged != result["client"]:
    sys.exit(f"bench: the client counted {result['client']} bytes, the registry's log {logged}")
