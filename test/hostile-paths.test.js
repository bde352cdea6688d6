'use strict';
// Hostile things at or above the lock path: symlinks, directories, FIFOs,
// sockets, devices and files where directories belong. Each is a typed
// LockError naming the path, never a hang, and the thing itself is left
// exactly as it was.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { LockError, LoopLock } = require('../dist');
const { UNDER_WINE, lockPathIn, makeWorkspace } = require('./helpers');
const { calls, assertLockError, attempt, assertOutcome, assertNotADirectory } = require('./bad-input');

for (const [name, call] of Object.entries(calls)) {
  test(`${name}: a workspace that is a regular file is LockError ENOTDIR, and the file is unchanged`, (t) => {
    const dir = makeWorkspace(t);
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, 'precious');
    assertNotADirectory(name, call, file, file);
    assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
  });

  test(`${name}: a symlink at the lock path is LockError ELOOP, and its target is untouched`, (t) => {
    if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
    const workspace = makeWorkspace(t);
    const outside = makeWorkspace(t);
    const target = path.join(outside, 'target');
    fs.writeFileSync(target, 'do not touch\n');
    fs.utimesSync(target, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    const before = fs.statSync(target);
    fs.mkdirSync(path.join(workspace, '.ralph'));
    fs.symlinkSync(target, lockPathIn(workspace));

    assertLockError(() => call(workspace), 'ELOOP', lockPathIn(workspace));
    const after = fs.statSync(target);
    assert.equal(fs.readFileSync(target, 'utf8'), 'do not touch\n');
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.size, before.size);
    assert.ok(fs.lstatSync(lockPathIn(workspace)).isSymbolicLink(), 'the symlink itself stays');
  });

  test(`${name}: a dangling symlink at the lock path is LockError ELOOP and creates nothing`, (t) => {
    if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
    const workspace = makeWorkspace(t);
    const outside = makeWorkspace(t);
    fs.mkdirSync(path.join(workspace, '.ralph'));
    fs.symlinkSync(path.join(outside, 'would-be-created'), lockPathIn(workspace));
    assertLockError(() => call(workspace), 'ELOOP', lockPathIn(workspace));
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  test(`${name}: a directory at the lock path is LockError EISDIR`, (t) => {
    const workspace = makeWorkspace(t);
    fs.mkdirSync(lockPathIn(workspace), { recursive: true });
    assertLockError(() => call(workspace), 'EISDIR', lockPathIn(workspace));
  });
}

test('a FIFO at the lock path is LockError EINVAL for every call, without hanging', (t) => {
  if (process.platform === 'win32') return t.skip('Windows has no FIFOs in the file system (mkfifo)');
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  const made = spawnSync('mkfifo', [lockPathIn(workspace)]);
  assert.equal(made.status, 0, 'mkfifo');
  // In a child with a timeout: a blocking open() of a FIFO would hang the
  // test process itself, beyond the reach of any test timeout.
  const outcomes = attempt(
    workspace,
    Object.keys(calls).map((op) => ({ op, prompt: 'p' })),
  );
  for (const outcome of outcomes) assertOutcome(outcome, 'EINVAL', lockPathIn(workspace));
  assert.ok(fs.lstatSync(lockPathIn(workspace)).isFIFO());
});

test('a unix socket at the lock path is LockError EINVAL for every call, as a FIFO is', async (t) => {
  if (process.platform === 'win32') return t.skip("Node on Windows listens on named pipes, not on a socket file at a path");
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  const server = net.createServer();
  await new Promise((resolve, reject) => server.listen(lockPathIn(workspace), resolve).on('error', reject));
  t.after(() => server.close());
  for (const call of Object.values(calls)) assertLockError(() => call(workspace), 'EINVAL', lockPathIn(workspace));
  await assert.rejects(LoopLock.acquire(workspace, 'p'), (error) => error instanceof LockError && error.code === 'EINVAL');
  assert.ok(fs.lstatSync(lockPathIn(workspace)).isSocket());
});

test('a character device at the lock path is LockError EINVAL', (t) => {
  if (process.platform === 'win32') return t.skip('/dev/null is POSIX (Windows devices such as NUL are not lock paths)');
  const workspace = makeWorkspace(t);
  assertLockError(() => LoopLock.tryAcquire(workspace, 'p', { lockFile: '/dev/null' }), 'EINVAL', '/dev/null');
  assertLockError(() => LoopLock.isLocked(workspace, { lockFile: '/dev/zero' }), 'EINVAL', '/dev/zero');
});

test('a parent component that is a file is LockError ENOTDIR naming the path', (t) => {
  const workspace = makeWorkspace(t);
  fs.writeFileSync(path.join(workspace, '.ralph'), 'a file where the directory goes');
  for (const [name, call] of Object.entries(calls)) assertNotADirectory(name, call, workspace, lockPathIn(workspace));
  assert.equal(fs.readFileSync(path.join(workspace, '.ralph'), 'utf8'), 'a file where the directory goes');
});

test('a missing workspace is created for tryAcquire but not by readers', (t) => {
  const parent = makeWorkspace(t);
  const workspace = path.join(parent, 'not', 'yet');
  assert.equal(LoopLock.isLocked(workspace), false);
  assert.equal(LoopLock.readExisting(workspace), null);
  assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });
  assert.deepEqual(fs.readdirSync(parent), []);
  LoopLock.tryAcquire(workspace, 'creates').release();
  assert.ok(fs.statSync(lockPathIn(workspace)).isFile());
});

test('a symlinked .ralph directory is followed: only the final component is refused', (t) => {
  if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
  const workspace = makeWorkspace(t);
  const real = makeWorkspace(t);
  fs.symlinkSync(real, path.join(workspace, '.ralph'));
  LoopLock.tryAcquire(workspace, 'through a directory link').release();
  assert.ok(fs.lstatSync(path.join(workspace, '.ralph')).isSymbolicLink());
  assert.equal(LoopLock.readExisting(real, { lockFile: 'loop.lock' }).prompt, 'through a directory link');
});

test('a dangling symlink as .ralph is a LockError naming the path, and its target is not created', (t) => {
  if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
  const workspace = makeWorkspace(t);
  const outside = makeWorkspace(t);
  fs.symlinkSync(path.join(outside, 'missing'), path.join(workspace, '.ralph'));
  assertLockError(() => LoopLock.tryAcquire(workspace, 'p'), 'ENOENT', lockPathIn(workspace));
  assert.deepEqual(fs.readdirSync(outside), []);
});

test('a path cut inside a multi-byte character at PATH_MAX is ENAMETOOLONG, not a shorter path', (t) => {
  if (process.platform === 'win32') return t.skip('PATH_MAX is POSIX; Windows paths go to 32,767 UTF-16 units');
  const workspace = makeWorkspace(t);
  // Lay the path out so that "é" (2 bytes) straddles byte 4095, where a
  // PATH_MAX buffer ends: the copy must not stop before it and open the rest.
  // Names stay under NAME_MAX, so only the path's length is wrong, and a
  // path cut short would name a missing file: isLocked false, no error.
  const head = path.join(workspace, 'x');
  let before = '';
  while (Buffer.byteLength(head) + 1 + before.length + 201 < 4095) before += `${'a'.repeat(200)}/`;
  before += 'a'.repeat(4095 - Buffer.byteLength(head) - 1 - before.length);
  const lockFile = `${before}é${'b'.repeat(20)}`;
  const lockPath = path.join(head, lockFile);
  assert.equal(Buffer.byteLength(lockPath.slice(0, lockPath.indexOf('é'))), 4095);
  for (const options of [{ lockFile }, { lockFile, networkFilesystem: 'allow' }]) {
    assertLockError(() => LoopLock.isLocked(head, options), 'ENAMETOOLONG', workspace);
    assertLockError(() => LoopLock.status(head, options), 'ENAMETOOLONG', workspace);
  }
});
