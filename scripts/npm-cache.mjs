// Packages from the npm registry that the build and test scripts use but the
// project does not depend on (official Node.js binaries, the Zig compiler,
// the musl Bun): each fetched once with `npm pack` and unpacked into a cache
// outside the repository, LOOP_LOCK_CACHE (default /var/cache/loop-lock), so
// that `npm ci` stays light.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const cache = process.env.LOOP_LOCK_CACHE || '/var/cache/loop-lock';

// `npm run` hands its configuration down as npm_* variables; `npm pack` of
// another package must not see them.
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: cleanEnv() });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
  return result.stdout;
}

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
  if (!existsSync(tarball)) run('npm', ['pack', '--silent', `${name}@${version}`], tarballs);
  if (!existsSync(tarball)) throw new Error(`npm pack ${name}@${version} made none of ${tarball}: ${readdirSync(tarballs)}`);
  rmSync(`${dir}.partial`, { recursive: true, force: true });
  mkdirSync(`${dir}.partial`);
  run('tar', ['-xzf', tarball, '-C', `${dir}.partial`, '--strip-components=1']);
  renameSync(`${dir}.partial`, dir);
  return dir;
}
