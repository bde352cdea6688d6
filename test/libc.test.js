'use strict';

// Which prebuild a Linux process loads: node-gyp-build's choice, corrected
// on a musl system it does not recognise (lib/libc.ts). The musl Bun run in
// CI (`npm run test:musl`) proves the same on a real musl process.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { dirname, join } = require('node:path');
const { after, test } = require('node:test');

const { elfInterpreter, fitLibc, libc, libcOfLoader } = require('../dist/libc.js');

const scratch = mkdtempSync(join(tmpdir(), 'loop-lock-libc-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A minimal 64-bit little-endian ELF executable whose only program header is PT_INTERP. */
function elfNaming(interpreter) {
  const name = Buffer.from(`${interpreter}\0`, 'latin1');
  const header = Buffer.alloc(64 + 56);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // 64-bit
  header[5] = 1; // little-endian
  header[6] = 1;
  header.writeUInt16LE(2, 16); // ET_EXEC
  header.writeUInt16LE(62, 18); // x86-64
  header.writeBigUInt64LE(64n, 32); // e_phoff
  header.writeUInt16LE(56, 54); // e_phentsize
  header.writeUInt16LE(1, 56); // e_phnum
  header.writeUInt32LE(3, 64); // PT_INTERP
  header.writeBigUInt64LE(BigInt(header.length), 64 + 8); // p_offset
  header.writeBigUInt64LE(BigInt(name.length), 64 + 32); // p_filesz
  const file = join(scratch, `exe-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, Buffer.concat([header, name]));
  return file;
}

test('the loader an executable names tells glibc from musl', () => {
  assert.equal(elfInterpreter(elfNaming('/lib/ld-musl-x86_64.so.1')), '/lib/ld-musl-x86_64.so.1');
  assert.equal(libcOfLoader(elfInterpreter(elfNaming('/lib/ld-musl-aarch64.so.1'))), 'musl');
  assert.equal(libcOfLoader(elfInterpreter(elfNaming('/lib64/ld-linux-x86-64.so.2'))), 'glibc');
  assert.equal(libcOfLoader(elfInterpreter(elfNaming('/lib/ld-linux-aarch64.so.1'))), 'glibc');
  assert.equal(libcOfLoader('/opt/odd/loader'), null);
  const notElf = join(scratch, 'script');
  writeFileSync(notElf, '#!/bin/sh\n');
  assert.equal(elfInterpreter(notElf), null);
  assert.equal(elfInterpreter(join(scratch, 'missing')), null);
});

test('this process is on the C library its report names, and LIBC still wins', { skip: process.platform !== 'linux' }, () => {
  const report = process.report.getReport().header.glibcVersionRuntime;
  const probe = (LIBC) => {
    const env = { ...process.env };
    delete env.LIBC;
    if (LIBC) env.LIBC = LIBC;
    const child = spawnSync(process.execPath, ['-p', `require(${JSON.stringify(join(__dirname, '..', 'dist', 'libc.js'))}).libc()`], {
      env,
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
    return child.stdout.trim();
  };
  assert.equal(probe(), report === undefined ? 'musl' : 'glibc');
  assert.equal(probe('musl'), 'musl');
  assert.equal(probe('glibc'), 'glibc');
  assert.equal(typeof libc(), 'string');
});

test('on musl the musl prebuild replaces the glibc one node-gyp-build chose', () => {
  const dir = join(scratch, 'prebuilds', 'linux-x64');
  const glibc = join(dir, 'loop-lock.glibc.node');
  const musl = join(dir, 'loop-lock.musl.node');
  const both = new Set([glibc, musl]);
  assert.equal(fitLibc(glibc, 'musl', (file) => both.has(file)), musl);
  assert.equal(fitLibc(glibc, 'glibc', (file) => both.has(file)), glibc);
  // A glibc build cannot load on musl: no build at all says so better.
  assert.equal(fitLibc(glibc, 'musl', (file) => file === glibc), null);
  // What node-gyp-build found itself stands: a build from source, a musl one.
  const fromSource = join(scratch, 'build', 'Release', 'loop_lock.node');
  assert.equal(fitLibc(fromSource, 'musl', () => true), fromSource);
  assert.equal(fitLibc(musl, 'musl', () => true), musl);
});

// The install script names the C library for node-gyp-build, whose load test
// then keeps the musl prebuild, or builds from source when it fails to load.
// The process is made to look musl by its executable (process.execPath);
// the "musl" prebuild is a copy of this machine's glibc build, so it loads.
test('at install on musl, node-gyp-build keeps a musl prebuild that loads and rebuilds one that does not', { skip: process.platform !== 'linux' }, () => {
  const root = join(__dirname, '..');
  const arch = process.arch;
  const install = (dir, executable) => {
    // node-gyp-build's install step runs node-gyp-build-test from PATH, as npm's scripts find it:
    // the .bin beside node-gyp-build, in a checkout and in an installed project alike.
    const bin = join(dirname(dirname(require.resolve('node-gyp-build/package.json'))), '.bin');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    delete env.LIBC;
    const code = `Object.defineProperty(process, 'execPath', { value: ${JSON.stringify(executable)} });
      require(${JSON.stringify(join(root, 'scripts', 'install.js'))});`;
    return spawnSync(process.execPath, ['-e', code], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
  };
  const project = (musl) => {
    const dir = mkdtempSync(join(scratch, 'install-'));
    writeFileSync(join(dir, 'package.json'), '{"name":"libc-fixture","version":"1.0.0"}\n');
    const prebuilds = join(dir, 'prebuilds', `linux-${arch}`);
    mkdirSync(prebuilds, { recursive: true });
    writeFileSync(join(prebuilds, 'loop-lock.musl.node'), musl);
    return dir;
  };
  const loadable = readFileSync(require('node-gyp-build').resolve(root));
  const muslExe = elfNaming(`/lib/ld-musl-${arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`);
  const glibcExe = elfNaming('/lib64/ld-linux-x86-64.so.2');
  // An empty project has no binding.gyp: a build attempt fails, keeping the prebuild succeeds.
  const kept = install(project(loadable), muslExe);
  assert.equal(kept.status, 0, `the musl prebuild was not kept on musl: ${kept.stderr}${kept.stdout}`);
  assert.notEqual(install(project(loadable), glibcExe).status, 0, 'on glibc a musl-only project must build');
  assert.notEqual(install(project(Buffer.from('not an addon')), muslExe).status, 0, 'a musl prebuild that fails to load must be rebuilt');
});
