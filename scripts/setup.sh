#!/usr/bin/env bash
# Installs everything treechunk's build, tests and benchmarks need on a Debian 12 machine:
# the peer tools from Debian's archive and the NuGet packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ostree skopeo umoci mmdebstrap rpm pigz zstd docker-registry podman apache2-utils
          createrepo-c dnf python3 tar gzip time qemu-user-static binfmt-support arch-test file
          chromium gcc zlib1g-dev openssl python3-nacl docker.io)
# chromium: headless check of the page oci diff --html writes; gcc, zlib1g-dev: native AOT's
# linker and libz for dotnet publish; openssl and python3-nacl (libsodium): the signing tests
# check signatures and key files against them; docker.io: dockerd, which the runtime tests
# start on a private socket.
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Foreign-architecture composes run that architecture's binaries through qemu-user, which the
# kernel finds through binfmt_misc: mounted before the packages install, so qemu-user-static's
# postinst registers its interpreters.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
  $SUDO mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null ||
    echo "setup: cannot mount binfmt_misc: composes for other architectures will fail" >&2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Installed earlier without binfmt_misc mounted: register the interpreters now.
if [ -e "$binfmt/register" ] && [ ! -e "$binfmt/qemu-aarch64" ]; then
  $SUDO update-binfmts --import >/dev/null 2>&1 || true
  for f in /usr/share/binfmts/qemu-*; do $SUDO update-binfmts --enable "$(basename "$f")" >/dev/null 2>&1 || true; done
fi

if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK (dotnet) is required and is not on PATH" >&2
  exit 3
fi
dotnet restore --nologo -v quiet Treechunk.slnx
