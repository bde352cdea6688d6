// Debian 11 (bullseye: glibc 2.31, gcc 10) in a chroot made with
// debootstrap from Debian's mirror, and commands run inside it. The
// prebuilds for glibc are compiled in one (scripts/prebuild-linux.mjs), and
// the suite runs in another, with no compiler (scripts/test-matrix.mjs).
// Needs root (debootstrap, chroot, mount), debootstrap and util-linux. The
// chroots are cached in LOOP_LOCK_CACHE (default /var/cache/loop-lock);
// LOOP_LOCK_DEBIAN_MIRROR overrides the mirror.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cache } from './npm-cache.mjs';
import { run } from './run.mjs';

const mirror = process.env.LOOP_LOCK_DEBIAN_MIRROR || 'http://deb.debian.org/debian';

/** A shell word that stands for `word` as it is. */
export const quote = (word) => `'${word.replaceAll("'", "'\\''")}'`;

/**
 * The chroot `name` in the cache, a minimal bullseye with `packages`, made
 * once: a marker names what it was made with, so a change of package list
 * makes a new one.
 */
export function bullseye(name, packages) {
  const chroot = join(cache, name);
  const marker = `bullseye minbase ${packages.join(',')}`;
  const markerFile = join(chroot, '.loop-lock-chroot');
  if (existsSync(markerFile) && readFileSync(markerFile, 'utf8').trim() === marker) return chroot;
  if (process.getuid?.() !== 0) throw new Error(`making ${chroot} needs root (debootstrap, chroot, mount)`);
  const started = performance.now();
  console.log(`bullseye: debootstrap into ${chroot}`);
  rmSync(chroot, { recursive: true, force: true });
  rmSync(`${chroot}.partial`, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  run('debootstrap', ['--variant=minbase', `--include=${packages.join(',')}`, 'bullseye', `${chroot}.partial`, mirror]);
  writeFileSync(join(`${chroot}.partial`, '.loop-lock-chroot'), `${marker}\n`);
  renameSync(`${chroot}.partial`, chroot);
  console.log(`bullseye: debootstrap took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return chroot;
}

/**
 * Runs the shell `command` (sh -eu) as root in `chroot`, streaming its
 * output, in a private mount namespace so that its mounts go away with it:
 * each of `binds` (a path in the chroot: a directory outside) read-only,
 * /proc, /sys and /dev. The environment is `env` on top of HOME, a PATH that
 * leads to /opt/node/bin first and LC_ALL. Returns spawnSync's result.
 */
export function inChroot(chroot, command, { binds = {}, env = {} } = {}) {
  const mounts = Object.entries(binds).map(([inside, outside]) => {
    const target = `"$root"${quote(inside)}`;
    mkdirSync(join(chroot, inside), { recursive: true });
    return `mount --bind ${quote(outside)} ${target}; mount -o remount,bind,ro ${target}`;
  });
  const passed = Object.entries(env).map(([name, value]) => quote(`${name}=${value}`));
  const script = `
    set -eu
    root=$1
    ${mounts.join('\n    ')}
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    exec env -i HOME=/root PATH=/opt/node/bin:/usr/bin:/bin:/usr/sbin:/sbin LC_ALL=C.UTF-8 ${passed.join(' ')} \\
      /usr/sbin/chroot "$root" sh -euc ${quote(command)}`;
  return spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'bullseye', chroot], {
    stdio: 'inherit',
    env: { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' },
  });
}
