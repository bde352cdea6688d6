// The official musl build of Bun (npm: @oven/bun-linux-x64-musl, the
// version package-lock.json pins for the `bun` devDependency), run on this
// glibc machine: npm has no musl Node, and this is a real musl process that
// loads the musl prebuild as it would on Alpine.
//
// The kernel starts it under its interpreter, musl's loader
// (/lib/ld-musl-x86_64.so.1, Debian's package `musl`). It needs a C++
// runtime, which Alpine has as musl builds; here Debian's glibc
// libstdc++.so.6 and libgcc_s.so.1 stand in, on LD_LIBRARY_PATH, with a
// shim for the few glibc-only symbols they import, compiled with musl-gcc
// (Debian's `musl-tools`) and named after glibc's loader, which they list
// as needed. The shim serves Bun's own C++ runtime; the addon links libc++
// statically and needs none of it (check:prebuilds: only libc.so).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cache, npmPackage } from './npm-cache.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

const SHIM = `// glibc-only symbols that Debian's libstdc++ and libgcc_s import (see scripts/musl-bun.mjs).
#include <locale.h>
#include <stddef.h>
#include <stdint.h>
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

// libgcc's CPU model, all zero: no optional instruction set is assumed.
struct { unsigned vendor, type, subtype, features[1]; } __cpu_model;
unsigned __cpu_features2[4];
int __cpu_indicator_init(void) { return 0; }
`;

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
}

/** The directory of C++ runtime libraries the musl Bun loads, made once. */
function runtimeLibraries() {
  const dir = join(cache, 'musl-bun', 'x64-lib');
  if (existsSync(join(dir, 'ld-linux-x86-64.so.2'))) return dir;
  for (const needed of ['/lib/ld-musl-x86_64.so.1', '/usr/bin/musl-gcc']) {
    if (!existsSync(needed)) throw new Error(`${needed} is missing: apt-get install musl musl-tools`);
  }
  rmSync(`${dir}.partial`, { recursive: true, force: true });
  mkdirSync(`${dir}.partial`, { recursive: true });
  writeFileSync(join(`${dir}.partial`, 'shim.c'), SHIM);
  run('musl-gcc', ['-shared', '-fPIC', '-O2', '-o', join(`${dir}.partial`, 'ld-linux-x86-64.so.2'), join(`${dir}.partial`, 'shim.c')]);
  symlinkSync('/usr/lib/x86_64-linux-gnu/libstdc++.so.6', join(`${dir}.partial`, 'libstdc++.so.6'));
  symlinkSync('/lib/x86_64-linux-gnu/libgcc_s.so.1', join(`${dir}.partial`, 'libgcc_s.so.1'));
  renameSync(`${dir}.partial`, dir);
  return dir;
}

/** The musl Bun executable and the environment it runs in. */
export function muslBun() {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const name = '@oven/bun-linux-x64-musl';
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`package-lock.json pins no ${name}`);
  return { binary: join(npmPackage(name, version), 'bin', 'bun'), env: { LD_LIBRARY_PATH: runtimeLibraries() } };
}
