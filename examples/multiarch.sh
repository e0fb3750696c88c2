#!/usr/bin/env bash
# The multi-architecture build of the command reference, end to end: compose one treefile for
# each architecture (foreign ones run under qemu-user), push each image as TAG-ARCH, then
# create the index TAG over them and show its platforms.
#
#   examples/multiarch.sh [TREEFILE]
#
# Environment: ARCHITECTURES (default "amd64 arm64"; ppc64le and s390x work too, slowly),
# REGISTRY (host:port; default: a docker-registry started here on a free loopback port and
# stopped at the end; set INSECURE=1 for a plain-HTTP one), REPOSITORY (default example/myapp),
# TAG (default latest), OUT (default ./out/multiarch), TREECHUNK (a treechunk executable to use
# instead of publishing one). Composing for another architecture takes minutes: qemu runs its
# binaries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
treefile="$(realpath "${1:-$root/examples/debian-minimal/treefile.yaml}")"
read -r -a architectures <<< "${ARCHITECTURES:-amd64 arm64}"
repository="${REPOSITORY:-example/myapp}"
tag="${TAG:-latest}"
out="$(realpath -m "${OUT:-$root/out/multiarch}")"
mkdir -p "$out"

bash "$root/scripts/setup.sh"
treechunk="${TREECHUNK:-$out/cli/treechunk}"
[ -x "$treechunk" ] || dotnet publish "$root/src/Treechunk.Cli" -c Release --nologo -v quiet -o "$out/cli"

registry="${REGISTRY:-}"
insecure=()
[ "${INSECURE:-0}" = 1 ] && insecure=(--insecure)
if [ -z "$registry" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$out/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $out/registry-storage } }
http: { addr: 127.0.0.1:$port }
YML
  docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
  registry_pid=$!
  trap 'kill $registry_pid 2>/dev/null || true' EXIT
  registry="127.0.0.1:$port"
  for _ in $(seq 100); do curl -sf "http://$registry/v2/" >/dev/null && break; sleep 0.1; done
  insecure=(--insecure)
  echo "multiarch: a local registry at $registry"
fi

for arch in "${architectures[@]}"; do
  echo "multiarch: composing for $arch"
  # One repository for every architecture: a ref with ${basearch} keeps their branches apart.
  "$treechunk" compose build-ostree \
    --repo="$out/repo" \
    --output-oci="$out/oci-image-$arch" \
    --oci-tag="$tag" \
    --arch="$arch" \
    --cache-dir="$out/cache" \
    "$treefile"
  echo "multiarch: pushing $arch as $tag-$arch"
  "$treechunk" oci push "${insecure[@]}" \
    --registry="$registry" \
    --repository="$repository" \
    --tag="$tag-$arch" \
    "$out/oci-image-$arch"
done

echo "multiarch: creating the index $tag"
"$treechunk" oci manifest create "${insecure[@]}" \
  --registry="$registry" \
  --repository="$repository" \
  --tag="$tag" \
  --architectures="$(IFS=,; echo "${architectures[*]}")"
"$treechunk" oci manifest inspect "${insecure[@]}" "docker://$registry/$repository:$tag"
