#!/usr/bin/env node
// Builds prebuilds/linux-x64 and prebuilds/linux-arm64 (glibc) so that they
// load on every Linux that Node 20's official binaries run on: glibc 2.28 and
// newer. (`npm run prebuild:linux`; `npm run prebuilds` builds every target.)
//
// The compilers are Debian 11's (bullseye: gcc 10, glibc 2.31), in a chroot
// (scripts/lib/bullseye.mjs): what they link against is older than the
// floor, so no symbol needs pinning. arm64 uses bullseye's own aarch64 cross
// compiler in the same chroot. Node's headers come from the official Node
// binary's package on npm, node-gyp and node-addon-api from this checkout's
// node_modules (npm ci), each bind-mounted read-only at a fixed path, as the
// sources are copied to one (/build), so the bytes do not depend on where
// the checkout is. Needs root (debootstrap, chroot, mount), debootstrap and
// util-linux.
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bullseye, inChroot } from './lib/bullseye.mjs';
import { headersNode } from './lib/npm-cache.mjs';
import { root } from './lib/repo.mjs';
import { run } from './lib/run.mjs';

const PACKAGES = ['g++', 'make', 'python3', 'g++-aarch64-linux-gnu', 'binutils-aarch64-linux-gnu'];
// Each architecture and the prefix of its compiler's tools.
const ARCHES = { x64: '', arm64: 'aarch64-linux-gnu-' };

// What runs inside the chroot: node-gyp for each architecture, then strip.
const BUILD = `set -euo pipefail
cd /build
build() {
  local arch=$1 prefix=$2
  rm -rf build
  CC=\${prefix}gcc CXX=\${prefix}g++ node node_modules/node-gyp/bin/node-gyp.js rebuild \\
    --nodedir=/opt/node --arch="$arch" --jobs=2 >"/build/node-gyp-$arch.log" 2>&1 ||
    { tail -40 "/build/node-gyp-$arch.log" >&2; exit 1; }
  mkdir -p "out/linux-$arch"
  "\${prefix}strip" --strip-all -o "out/linux-$arch/loop-lock.glibc.node" build/Release/loop_lock.node
  echo "prebuild-linux: built linux-$arch with $("\${prefix}g++" --version | head -1)"
}
${Object.entries(ARCHES)
  .map(([arch, prefix]) => `build ${arch} '${prefix}'`)
  .join('\n')}
`;

function main() {
  if (process.getuid() !== 0) throw new Error('needs root (debootstrap, chroot, mount)');
  for (const module of ['node-gyp', 'node-addon-api']) {
    if (!existsSync(join(root, 'node_modules', module))) throw new Error('run npm ci first');
  }
  const chroot = bullseye('bullseye-build', PACKAGES);
  const build = join(chroot, 'build');
  rmSync(build, { recursive: true, force: true });
  mkdirSync(join(build, 'node_modules'), { recursive: true });
  copyFileSync(join(root, 'binding.gyp'), join(build, 'binding.gyp'));
  cpSync(join(root, 'native'), join(build, 'native'), { recursive: true });
  writeFileSync(join(build, 'build.sh'), BUILD);
  const binds = { '/build/node_modules': join(root, 'node_modules'), '/opt/node': headersNode() };
  const result = inChroot(chroot, 'exec bash /build/build.sh', { binds });
  if (result.status !== 0) throw new Error(`the build in ${chroot} failed: exit ${result.status ?? result.signal}`);
  for (const arch of Object.keys(ARCHES)) {
    const file = join(`linux-${arch}`, 'loop-lock.glibc.node');
    mkdirSync(join(root, 'prebuilds', `linux-${arch}`), { recursive: true });
    copyFileSync(join(build, 'out', file), join(root, 'prebuilds', file));
  }
  rmSync(build, { recursive: true, force: true });
  // Record what they were built from, and check them against the floor.
  const targets = Object.keys(ARCHES).map((arch) => `linux-${arch}`);
  const prebuilds = join(root, 'scripts', 'prebuilds.mjs');
  run(process.execPath, [prebuilds, 'record', ...targets], { stdio: 'inherit' });
  run(process.execPath, [prebuilds, 'check', ...targets], { stdio: 'inherit' });
}

try {
  main();
} catch (error) {
  console.error(`prebuild-linux: ${error.message}`);
  process.exit(1);
}
