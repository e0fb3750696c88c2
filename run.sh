#!/usr/bin/env bash
# The main job, on a fresh machine: install prerequisites, build a small real Debian bookworm
# root filesystem (mmdebstrap, cached), and export it as a chunked OCI layout in ./out/image.
# Extra arguments go to `treechunk compose build-chunked-oci` (e.g. --compression zstd).
# No registry or container daemon is needed.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
dotnet publish src/Treechunk.Cli -c Release --nologo -v quiet -o out/cli
tree=$(bash tests/fixtures/debian-tree.sh)
mkdir -p out
out/cli/treechunk compose build-chunked-oci --rootfs "$tree" --output oci:out/image:latest \
  --metrics-file out/metrics.json --force "$@"
out/cli/treechunk oci layers out/image
out/cli/treechunk oci verify-layers out/image
skopeo inspect oci:out/image:latest >/dev/null && echo "skopeo: oci:out/image:latest OK"
