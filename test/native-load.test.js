'use strict';

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { after, test } = require('node:test');

const dist = join(__dirname, '..', 'dist');
const scratch = mkdtempSync(join(tmpdir(), 'loop-lock-load-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// The addon is loaded once per process, so each case runs in a child that
// points node-gyp-build elsewhere through LOOP_LOCK_PREBUILD.
function run(buildDir, code) {
  const child = spawnSync(process.execPath, ['-e', `const loopLock = require(${JSON.stringify(dist)});\n${code}`], {
    env: { ...process.env, LOOP_LOCK_PREBUILD: buildDir },
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout);
}

const reportFailure = `
try {
  loopLock.LoopLock.isLocked(${JSON.stringify(scratch)});
  console.log(JSON.stringify(null));
} catch (error) {
  console.log(JSON.stringify({
    isLockError: error instanceof loopLock.LockError,
    code: error.code,
    message: error.message,
    cause: error.cause && error.cause.message,
  }));
}`;

test('importing loop-lock does not load the addon', () => {
  const empty = mkdtempSync(join(scratch, 'empty-'));
  assert.deepEqual(run(empty, 'console.log(JSON.stringify(typeof loopLock.LoopLock.tryAcquire));'), 'function');
});

test('with no build to load, the first call throws ENOBUILD naming the system, the paths tried and the fix', () => {
  const empty = mkdtempSync(join(scratch, 'empty-'));
  const failure = run(empty, reportFailure);
  assert.ok(failure, 'the call succeeded without an addon');
  assert.equal(failure.isLockError, true);
  assert.equal(failure.code, 'ENOBUILD');
  assert.match(failure.cause, /^No native build was found/);
  const { message } = failure;
  assert.ok(message.includes(`${process.platform}-${process.arch}`), message);
  assert.ok(message.includes(`Node.js ${process.versions.node}`), message);
  assert.ok(message.includes(`ABI ${process.versions.modules}`), message);
  assert.ok(message.includes(`N-API ${process.versions.napi}`), message);
  assert.ok(message.includes(join(empty, 'build', 'Release')), message);
  assert.ok(message.includes(join(empty, 'prebuilds', `${process.platform}-${process.arch}`)), message);
  assert.ok(message.includes('Prebuilt: none'), message);
  assert.ok(message.includes('npm rebuild loop-lock'), message);
  assert.ok(message.includes('npm install-scripts approve loop-lock'), message);
});

test('the ENOBUILD message lists the prebuilds that are shipped but do not fit', () => {
  const other = mkdtempSync(join(scratch, 'other-'));
  mkdirSync(join(other, 'prebuilds', 'sunos-mips'), { recursive: true });
  writeFileSync(join(other, 'prebuilds', 'sunos-mips', 'loop-lock.node'), '');
  const failure = run(other, reportFailure);
  assert.equal(failure.code, 'ENOBUILD');
  assert.ok(failure.message.includes('Prebuilt: sunos-mips/loop-lock.node.'), failure.message);
});

test('a build that is found but cannot be loaded is rethrown as it is', () => {
  const broken = mkdtempSync(join(scratch, 'broken-'));
  mkdirSync(join(broken, 'build', 'Release'), { recursive: true });
  writeFileSync(join(broken, 'build', 'Release', 'loop_lock.node'), 'not a shared object');
  const failure = run(broken, reportFailure);
  assert.equal(failure.isLockError, false);
  assert.equal(failure.code, 'ERR_DLOPEN_FAILED');
});

test('the install script builds nothing where loop-lock has no lock, and builds on Linux and Windows', () => {
  const empty = mkdtempSync(join(scratch, 'install-'));
  const script = join(__dirname, '..', 'scripts', 'install.js');
  const env = { ...process.env, PATH: `${join(__dirname, '..', 'node_modules', '.bin')}:${process.env.PATH}` };
  const asPlatform = (platform) =>
    spawnSync(
      process.execPath,
      ['-e', `Object.defineProperty(process, 'platform', { value: '${platform}' }); require(${JSON.stringify(script)});`],
      { cwd: empty, env, encoding: 'utf8', timeout: 60_000 },
    );
  // An empty directory has no binding.gyp: a build attempt fails, skipping it succeeds.
  assert.equal(asPlatform('aix').status, 0);
  assert.equal(existsSync(join(empty, 'build')), false);
  assert.notEqual(asPlatform('linux').status, 0, 'on Linux the script does try to build');
  assert.notEqual(asPlatform('win32').status, 0, 'on Windows the script does try to build');
});

// A process out of descriptors, before its first call: with node-gyp-build
// not yet loaded (require() fails), and already loaded by another package
// (it lists no directory, and finds "no build").
for (const preload of [false, true]) {
  test(`out of descriptors at the first call${preload ? ', node-gyp-build already loaded' : ''}: LockError EMFILE, and the next call, with descriptors free, works`, (t) => {
    const workspace = mkdtempSync(join(scratch, 'emfile-'));
    const code = `
${preload ? "require('node-gyp-build');" : ''}
const fs = require('node:fs');
const held = [];
try {
  for (;;) held.push(fs.openSync('/dev/null', 'r'));
} catch (error) {
  if (error.code !== 'EMFILE') throw error;
}
let failure = null;
try {
  loopLock.LoopLock.isLocked(${JSON.stringify(workspace)});
} catch (error) {
  failure = { isLockError: error instanceof loopLock.LockError, code: error.code, message: error.message };
}
for (const fd of held) fs.closeSync(fd);
console.log(JSON.stringify({ failure, after: loopLock.LoopLock.isLocked(${JSON.stringify(workspace)}) }));`;
    const child = spawnSync('prlimit', ['--nofile=64', process.execPath, '-e', `const loopLock = require(${JSON.stringify(dist)});\n${code}`], {
      encoding: 'utf8',
      cwd: join(__dirname, '..'),
    });
    if (child.error?.code === 'ENOENT') return t.skip('util-linux prlimit is not installed');
    assert.equal(child.status, 0, child.stderr);
    const { failure, after: afterwards } = JSON.parse(child.stdout);
    assert.ok(failure, 'the call succeeded without a descriptor');
    assert.equal(failure.isLockError, true, failure.message);
    assert.equal(failure.code, 'EMFILE', failure.message);
    assert.equal(afterwards, false);
  });
}
