// The official musl builds of Bun (npm: @oven/bun-linux-x64-musl and
// @oven/bun-linux-aarch64-musl, the version package-lock.json pins for the
// `bun` devDependency), run on this glibc machine: npm has no musl Node, and
// this is a real musl process that loads the musl prebuild as it would on
// Alpine. arm64 runs under qemu-user, registered with binfmt_misc so that
// the processes it spawns do too.
//
// The kernel starts Bun under its interpreter, musl's loader
// (/lib/ld-musl-<arch>.so.1: Debian's package `musl`, `musl:arm64`). Bun
// needs a C++ runtime, which Alpine has as musl builds; here Debian's glibc
// libstdc++.so.6 and libgcc_s.so.1 stand in, on LD_LIBRARY_PATH, with a
// shim, compiled with Zig (from npm, as for the prebuilds), that defines the
// few glibc-only symbols they import. It serves Bun's own C++ runtime: the
// addon links libc++ statically and needs none of it (check:prebuilds: only
// libc.so). The shim must be loaded without disturbing the glibc programs
// the tests spawn, which inherit LD_LIBRARY_PATH: on x64 it is named after
// glibc's loader, which x64's libstdc++ lists as needed and glibc programs
// have loaded already; on arm64 it takes the name Bun asks for,
// libstdc++.so.6, and needs the real one under another name (x64 programs
// pass over arm64 files in the path).
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureArm64Binfmt } from './binfmt.mjs';
import { cache, npmPackage } from './npm-cache.mjs';
import { lockedVersion } from './repo.mjs';
import { zig } from './zig.mjs';

const ARCHES = {
  x64: {
    bun: '@oven/bun-linux-x64-musl',
    triple: 'x86_64-linux-musl',
    loader: '/lib/ld-musl-x86_64.so.1',
    gnu: { libstdcxx: '/usr/lib/x86_64-linux-gnu/libstdc++.so.6', libgcc: '/lib/x86_64-linux-gnu/libgcc_s.so.1' },
    shim: 'ld-linux-x86-64.so.2',
    packages: 'musl',
  },
  arm64: {
    bun: '@oven/bun-linux-aarch64-musl',
    triple: 'aarch64-linux-musl',
    loader: '/lib/ld-musl-aarch64.so.1',
    gnu: { libstdcxx: '/usr/aarch64-linux-gnu/lib/libstdc++.so.6', libgcc: '/usr/aarch64-linux-gnu/lib/libgcc_s.so.1' },
    shim: 'libstdc++.so.6',
    packages: 'musl:arm64 (dpkg --add-architecture arm64) libstdc++6-arm64-cross qemu-user',
  },
};

const SHIM = `// glibc-only symbols that Debian's libstdc++ and libgcc_s import (see scripts/lib/musl-bun.mjs).
#include <locale.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

char __libc_single_threaded = 0;

size_t __strftime_l(char *s, size_t max, const char *format, const struct tm *tm, locale_t locale) {
  return strftime_l(s, max, format, tm, locale);
}

uint32_t arc4random(void) {
  uint32_t value = 0;
  getrandom(&value, sizeof value, 0);
  return value;
}

// No object table: the unwinder falls back to dl_iterate_phdr.
int _dl_find_object(void *address, void *result) {
  (void)address;
  (void)result;
  return -1;
}

// Thread-local destructors are not run at thread exit: a test harness's loss.
int __cxa_thread_atexit_impl(void (*destructor)(void *), void *object, void *dso) {
  (void)destructor;
  (void)object;
  (void)dso;
  return 0;
}

#if defined(__x86_64__)
// libgcc's CPU model, all zero: no optional instruction set is assumed.
struct { unsigned vendor, type, subtype, features[1]; } __cpu_model;
unsigned __cpu_features2[4];
int __cpu_indicator_init(void) { return 0; }
#else
unsigned long __getauxval(unsigned long type) { return getauxval(type); }
#endif
`;

/** The directory of C++ runtime libraries the musl Bun loads, made once. */
function runtimeLibraries(arch) {
  const spec = ARCHES[arch];
  const dir = join(cache, 'musl-bun', `${arch}-lib`);
  if (existsSync(join(dir, spec.shim))) return dir;
  for (const needed of [spec.loader, spec.gnu.libstdcxx, spec.gnu.libgcc]) {
    if (!existsSync(needed)) throw new Error(`${needed} is missing: apt-get install ${spec.packages}`);
  }
  const work = `${dir}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'stub'), { recursive: true });
  writeFileSync(join(work, 'shim.c'), SHIM);
  const compile = ['cc', '-target', spec.triple, '-shared', '-fPIC', '-O2', '-o', spec.shim, 'shim.c'];
  if (spec.shim === 'libstdc++.so.6') {
    // Linked against a stub that carries the real library's new name.
    writeFileSync(join(work, 'stub', 'empty.c'), '');
    zig(['cc', '-target', spec.triple, '-shared', '-Wl,-soname,libstdc++-gnu.so.6', '-o', 'stub/libstdc++-gnu.so.6', 'stub/empty.c'], { cwd: work });
    zig([...compile, '-Wl,--no-as-needed', 'stub/libstdc++-gnu.so.6'], { cwd: work });
    symlinkSync(spec.gnu.libstdcxx, join(work, 'libstdc++-gnu.so.6'));
  } else {
    zig(compile, { cwd: work });
    symlinkSync(spec.gnu.libstdcxx, join(work, 'libstdc++.so.6'));
  }
  rmSync(join(work, 'stub'), { recursive: true });
  symlinkSync(spec.gnu.libgcc, join(work, 'libgcc_s.so.1'));
  renameSync(work, dir);
  return dir;
}

/** The musl Bun executable for `arch` and the environment it runs in. */
export function muslBun(arch = 'x64') {
  const spec = ARCHES[arch];
  if (spec === undefined) throw new Error(`no musl Bun for ${arch}`);
  const version = lockedVersion(spec.bun);
  if (!version) throw new Error(`package-lock.json pins no ${spec.bun}`);
  if (arch === 'arm64') ensureArm64Binfmt();
  return { binary: join(npmPackage(spec.bun, version), 'bin', 'bun'), env: { LD_LIBRARY_PATH: runtimeLibraries(arch) } };
}
