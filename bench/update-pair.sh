#!/usr/bin/env bash
# Makes (once) a real Debian update pair and prints the two trees' paths, one per line:
#   v1: the bookworm suite alone (minbase + systemd, bash, openssl, curl, ca-certificates)
#   v2: v1 after `apt-get full-upgrade` with bookworm-updates and bookworm-security added;
#       what the upgrade procedure itself touched (the extra sources, apt's lists, caches and
#       logs) is put back as it was, so the two trees differ by the upgrade alone.
# Both are cached under $TREECHUNK_CACHE (default /var/cache/treechunk): the Debian archive
# moves, so a pair is kept, not remade, and bench/update-efficiency.sh measures the same pair
# every run. Needs root (a real rootfs has files owned by other users).
set -euo pipefail
cache="${TREECHUNK_CACHE:-/var/cache/treechunk}"
packages="systemd,bash,openssl,curl,ca-certificates"
key=$(printf '%s' "update-pair bookworm minbase $packages v1" | sha256sum | cut -c1-12)
out="$cache/update-pair-$key"
if [ -f "$out/.done" ]; then echo "$out/v1"; echo "$out/v2"; exit 0; fi
mkdir -p "$cache"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
uri="${uri:-http://deb.debian.org/debian}"
security=$(awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
security="${security:-http://deb.debian.org/debian-security}"
cat > "$out.tmp/bookworm.sources" <<SRC
Types: deb
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat > "$out.tmp/updates.sources" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

echo "update-pair: composing v1 (bookworm)" >&2
SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --variant=minbase --include="$packages" \
  bookworm "$out.tmp/v1" "$out.tmp/bookworm.sources" >&2

echo "update-pair: v2 = v1 + full-upgrade from bookworm-updates and bookworm-security" >&2
cp -a "$out.tmp/v1" "$out.tmp/v2"
v2="$out.tmp/v2"
cp "$out.tmp/updates.sources" "$v2/etc/apt/sources.list.d/treechunk-updates.sources"
cleanup_mounts() { for m in dev/pts dev proc sys; do umount "$v2/$m" 2>/dev/null || true; done; }
trap cleanup_mounts EXIT
mount -t proc proc "$v2/proc"
mount -t sysfs sys "$v2/sys"
mount --bind /dev "$v2/dev"
mount --bind /dev/pts "$v2/dev/pts"
cp /etc/resolv.conf "$v2/etc/resolv.conf"
chroot "$v2" env DEBIAN_FRONTEND=noninteractive SOURCE_DATE_EPOCH=1700000000 LC_ALL=C.UTF-8 \
  sh -c 'apt-get -qq update && apt-get -qq -y -o Dpkg::Options::=--force-confold full-upgrade' >&2
cleanup_mounts
trap - EXIT
# Put back what the upgrade procedure, not the upgrade, changed.
rm -f "$v2/etc/apt/sources.list.d/treechunk-updates.sources"
cp -a "$out.tmp/v1/etc/resolv.conf" "$v2/etc/resolv.conf" 2>/dev/null || rm -f "$v2/etc/resolv.conf"
rm -rf "$v2/var/lib/apt/lists" && cp -a "$out.tmp/v1/var/lib/apt/lists" "$v2/var/lib/apt/lists"
rm -rf "$v2/var/cache/apt" && cp -a "$out.tmp/v1/var/cache/apt" "$v2/var/cache/apt"
rm -rf "$v2/var/log" && cp -a "$out.tmp/v1/var/log" "$v2/var/log"
for f in var/lib/apt/extended_states etc/machine-id; do
  [ -e "$out.tmp/v1/$f" ] && cp -a "$out.tmp/v1/$f" "$v2/$f"
done
rm -f "$out.tmp"/*.sources
rm -rf "$out"
mv "$out.tmp" "$out"
touch "$out/.done"
echo "$out/v1"
echo "$out/v2"
