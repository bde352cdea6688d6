import { closeSync, existsSync, openSync, readSync } from 'node:fs';

/** The C library a Linux process runs on, which decides which prebuild it can load. */
export type Libc = 'glibc' | 'musl';

let cached: Libc | undefined;

/**
 * The C library this process runs on, asked once. node-gyp-build tells musl
 * only by `/etc/alpine-release` or a `LIBC` variable, so on Void, Chimera,
 * a distroless musl image or a musl Bun it would pick the glibc prebuild,
 * which cannot load there. A `LIBC` variable still wins, as it does there.
 *
 * The cheapest reliable answer is the dynamic loader the executable names
 * (its ELF interpreter: ld-musl-* or ld-linux-*): one read of its first
 * page. Only an executable without one (static) falls back to the process
 * report, whose `glibcVersionRuntime` only glibc builds of Node fill in,
 * and which takes tens of milliseconds (half a second under Deno).
 */
export function libc(): Libc {
  const chosen = process.env['LIBC'];
  if (chosen === 'musl' || chosen === 'glibc') return chosen;
  cached ??= libcOfLoader(elfInterpreter(process.execPath)) ?? libcOfReport();
  return cached;
}

/** Which C library a dynamic loader's path belongs to, when it says. */
export function libcOfLoader(interpreter: string | null): Libc | null {
  if (interpreter === null) return null;
  if (/\/ld-musl-[^/]+$/.test(interpreter)) return 'musl';
  if (/\/ld-linux[^/]*\.so\.\d+$/.test(interpreter) || /\/ld\d*\.so\.\d+$/.test(interpreter)) return 'glibc';
  return null;
}

function libcOfReport(): Libc {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime === undefined ? 'musl' : 'glibc';
}

const PT_INTERP = 3;

/**
 * The interpreter (PT_INTERP) a 64-bit little-endian ELF executable names,
 * or null: not such a file, no interpreter, or unreadable.
 */
export function elfInterpreter(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const head = Buffer.alloc(4096);
    const length = readSync(fd, head, 0, head.length, 0);
    if (length < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return null;
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    for (let i = 0; i < phnum; i++) {
      const at = phoff + i * phentsize;
      if (at + 40 > length) return null;
      if (head.readUInt32LE(at) !== PT_INTERP) continue;
      const size = Math.min(Number(head.readBigUInt64LE(at + 32)), 4096);
      const path = Buffer.alloc(size);
      readSync(fd, path, 0, size, Number(head.readBigUInt64LE(at + 8)));
      const end = path.indexOf(0);
      return path.toString('latin1', 0, end === -1 ? size : end);
    }
    return null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * The file to load for this C library, given node-gyp-build's choice: on
 * musl, the musl prebuild beside the glibc one it chose, or null when there
 * is none (a glibc build cannot load there). Any other choice (a build from
 * source, an untagged or musl prebuild) stands.
 */
export function fitLibc(file: string, system: Libc, exists: (path: string) => boolean = existsSync): string | null {
  if (system !== 'musl' || !file.endsWith('.glibc.node')) return file;
  const musl = `${file.slice(0, -'.glibc.node'.length)}.musl.node`;
  return exists(musl) ? musl : null;
}
