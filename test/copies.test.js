'use strict';
// Two installed copies of loop-lock in one process (two versions in a
// monorepo): each loads its own addon, with handles of its own, yet a lock
// held through one must stop the other's acquireBlocking() on the same
// thread from waiting for itself, and `instanceof` must hold across them.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { makeWorkspace } = require('./helpers');

const ROOT = path.join(__dirname, '..');
// node-gyp-build as this package resolves it (hoisted when installed).
const GYP_BUILD_DIR = path.dirname(require.resolve('node-gyp-build/package.json', { paths: [ROOT] }));
const GYP_BUILD = require(GYP_BUILD_DIR);

/** Copies the installed parts of the package to `dir`: manifest, dist/ and the addon. */
function copyPackage(dir) {
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  // The addon this package loads: its build, or its prebuild when installed.
  fs.copyFileSync(GYP_BUILD.path(ROOT), path.join(dir, 'build', 'Release', 'loop_lock.node'));
}

/** Runs `code` in a child with `a` and `b` the two copies; returns what it prints as JSON. */
function withTwoCopies(t, code) {
  const scratch = makeWorkspace(t);
  const modules = path.join(scratch, 'node_modules');
  fs.mkdirSync(modules);
  fs.symlinkSync(GYP_BUILD_DIR, path.join(modules, 'node-gyp-build'));
  copyPackage(path.join(modules, 'copy-a'));
  copyPackage(path.join(modules, 'copy-b'));
  const workspace = path.join(scratch, 'workspace');
  fs.mkdirSync(workspace);
  const script = `
const a = require(${JSON.stringify(path.join(modules, 'copy-a'))});
const b = require(${JSON.stringify(path.join(modules, 'copy-b'))});
const workspace = ${JSON.stringify(workspace)};
if (a.LoopLock === b.LoopLock) throw new Error('one copy, not two');
${code}`;
  // A child with a timeout: the bug this guards against is a hang.
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(child.signal, null, `the child hung: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout);
}

test("copy B's acquireBlocking refuses with EDEADLK while copy A holds the lock in the same thread", (t) => {
  const result = withTwoCopies(
    t,
    `
const guard = a.LoopLock.tryAcquire(workspace, 'copy a');
let refused = null;
try {
  b.LoopLock.acquireBlocking(workspace, 'copy b');
} catch (error) {
  refused = { code: error.code, isLockError: error instanceof b.LockError };
}
guard.release();
const after = b.LoopLock.acquireBlocking(workspace, 'copy b');
console.log(JSON.stringify({ refused, after: after.metadata.prompt }));
after.release();`,
  );
  assert.deepEqual(result, { refused: { code: 'EDEADLK', isLockError: true }, after: 'copy b' });
});

test("errors of one copy are instances of the other copy's classes, and of no other", (t) => {
  const result = withTwoCopies(
    t,
    `
const guard = a.LoopLock.tryAcquire(workspace, 'copy a');
let locked;
try {
  b.LoopLock.tryAcquire(workspace, 'copy b');
} catch (error) {
  locked = error;
}
guard.release();
const plain = new Error('plain');
class Custom extends b.LockError {}
console.log(JSON.stringify({
  ownClass: locked instanceof b.AlreadyLockedError,
  otherClass: locked instanceof a.AlreadyLockedError,
  otherBase: locked instanceof a.LockError,
  otherSibling: locked instanceof a.LockParseError || locked instanceof a.UnsupportedPlatformError,
  baseIsNotSubclass: new b.LockError('x', { code: 'X' }) instanceof a.AlreadyLockedError,
  plain: plain instanceof a.LockError,
  primitive: 'ELOCKED' instanceof a.LockError,
  customOfOtherCopy: locked instanceof Custom,
  custom: new Custom('x', { code: 'X' }) instanceof a.LockError,
}));`,
  );
  assert.deepEqual(result, {
    ownClass: true,
    otherClass: true,
    otherBase: true,
    otherSibling: false,
    baseIsNotSubclass: false,
    plain: false,
    primitive: false,
    customOfOtherCopy: false,
    custom: true,
  });
});
