#!/usr/bin/env bash
# Installs everything treechunk's build, tests and benchmarks need on a Debian 12 machine:
# the peer tools from Debian's archive and the NuGet packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ostree skopeo umoci mmdebstrap rpm pigz zstd docker-registry podman apache2-utils
          createrepo-c dnf python3 tar gzip time)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK (dotnet) is required and is not on PATH" >&2
  exit 3
fi
dotnet restore --nologo -v quiet Treechunk.slnx
