#!/usr/bin/env bash
# The main job, on a fresh machine: install prerequisites, compose the minimal Debian example
# treefile (examples/debian-minimal) into an OSTree commit in ./out/repo with the real package
# manager (mmdebstrap), and export it as a chunked OCI layout in ./out/image; then verify both.
# Extra arguments go to `treechunk compose build-ostree` (e.g. --compression zstd).
# No registry or container daemon is needed. Packages and layers are cached in ./out/cache.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
dotnet publish src/Treechunk.Cli -c Release --nologo -v quiet -o out/cli
mkdir -p out
out/cli/treechunk compose build-ostree --repo out/repo --output-oci oci:out/image:latest \
  --cache-dir out/cache --cache-layers --metrics-file out/metrics.json "$@" \
  examples/debian-minimal/treefile.yaml
out/cli/treechunk oci layers out/image
out/cli/treechunk oci verify-layers out/image
ostree --repo=out/repo fsck --quiet && echo "ostree fsck: out/repo OK"
skopeo inspect oci:out/image:latest >/dev/null && echo "skopeo: oci:out/image:latest OK"
