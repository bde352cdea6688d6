'use strict';
// acquireBlocking(): waits in the calling thread like the reference's
// acquire_blocking, and refuses to wait for a lock its own thread holds.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { AlreadyLockedError, LoopLock } = require('../dist');
const { FIXTURES, makeWorkspace, startChild, UNDER_WINE, waitUntilWaiting } = require('./helpers');

function startHolder(t, config) {
  return startChild(t, 'holder.js', [JSON.stringify({ mode: 'try', ...config })]);
}

test('acquireBlocking takes a free lock at once and writes the record', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.acquireBlocking(workspace, 'blocking');
  try {
    assert.equal(guard.lockPath, path.join(workspace, '.ralph', 'loop.lock'));
    assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: guard.metadata });
    assert.throws(() => LoopLock.tryAcquire(workspace, 'other'), AlreadyLockedError);
  } finally {
    guard.release();
  }
  assert.equal(LoopLock.isLocked(workspace), false);
});

test('acquireBlocking in another process waits until the holder releases', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'first' });
  const { lockPath } = await holder.next('locked');

  const waiter = startHolder(t, { workspace, prompt: 'second', mode: 'blocking' });
  await waiter.next('waiting');
  await waitUntilWaiting(waiter.pid, lockPath, 'the waiter is waiting');
  assert.equal(LoopLock.status(workspace).holder.pid, holder.pid, 'the waiter has not taken over');

  holder.send('release');
  await holder.next('released');
  const locked = await waiter.next('locked');
  assert.equal(locked.pid, waiter.pid);
  assert.equal(LoopLock.status(workspace).holder.pid, waiter.pid);
  assert.equal(LoopLock.readExisting(workspace).prompt, 'second');
});

test('acquireBlocking in this thread returns once a holder in another process lets go', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'lets go soon', releaseAfterMs: 300 });
  await holder.next('locked');
  assert.equal(LoopLock.isLocked(workspace), true);

  const guard = LoopLock.acquireBlocking(workspace, 'waited');
  try {
    assert.equal(guard.metadata.prompt, 'waited');
    assert.equal(LoopLock.readExisting(workspace).pid, process.pid);
    await holder.next('released');
  } finally {
    guard.release();
  }
});

test('a holder killed while a process waits in acquireBlocking hands the lock over', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'crashes' });
  const { lockPath } = await holder.next('locked');
  const waiter = startHolder(t, { workspace, prompt: 'survivor', mode: 'blocking' });
  await waiter.next('waiting');
  await waitUntilWaiting(waiter.pid, lockPath, 'the waiter is waiting');
  holder.child.kill('SIGKILL');
  const locked = await waiter.next('locked');
  assert.equal(locked.metadata.prompt, 'survivor');
});

test('a waiter takes the new file when the lock file is deleted while it waits', { timeout: 10_000 }, async (t) => {
  if (process.platform === 'win32') {
    return t.skip("Windows keeps a deleted file's name until its last handle closes: the path is not free while the holder holds it");
  }
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'first' });
  const { lockPath } = await holder.next('locked');
  const waiter = startHolder(t, { workspace, prompt: 'waiter', mode: 'blocking' });
  await waitUntilWaiting(waiter.pid, lockPath, 'the waiter is waiting');

  // The file goes (rm -rf .ralph, git clean): the path is free, though the
  // holder still holds the unlinked inode.
  fs.unlinkSync(lockPath);
  const locked = await waiter.next('locked');
  assert.equal(locked.state, 'held');
  assert.equal(LoopLock.status(workspace).holder.pid, waiter.pid);
  assert.equal(LoopLock.isLocked(workspace), true);
});

test('a waiter whose file is replaced by one a newcomer holds waits on the new file', async (t) => {
  if (UNDER_WINE) return t.skip('Wine refuses a rename over an open file (EPERM), though it was opened sharing delete');
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'first' });
  const { lockPath } = await holder.next('locked');
  const waiter = startHolder(t, { workspace, prompt: 'waiter', mode: 'blocking' });
  await waitUntilWaiting(waiter.pid, lockPath, 'the waiter is waiting on the first file');

  // A newcomer locks another file and renames it over the lock file.
  const newcomer = LoopLock.tryAcquire(workspace, 'newcomer', { lockFile: '.ralph/next.lock' });
  fs.renameSync(newcomer.lockPath, lockPath);
  let released = false;
  try {
    await waitUntilWaiting(waiter.pid, lockPath, 'the waiter is waiting on the new file');
    assert.equal(LoopLock.status(workspace).holder.prompt, 'newcomer');
    newcomer.release();
    released = true;
    const locked = await waiter.next('locked');
    assert.equal(locked.state, 'held');
    assert.equal(LoopLock.status(workspace).holder.pid, waiter.pid);
  } finally {
    if (!released) newcomer.release();
  }
});

/**
 * Runs LoopLock steps in a child that keeps every guard it takes (see
 * fixtures/attempt.js). The EDEADLK cases run there because a missing
 * refusal would block the test process in flock() for good; in a child it
 * ends at the timeout and fails the test.
 */
function attempt(workspace, steps) {
  const run = spawnSync(process.execPath, [path.join(FIXTURES, 'attempt.js'), JSON.stringify({ workspace, steps })], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(run.signal, null, 'acquireBlocking waited for its own thread instead of refusing');
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('acquireBlocking refuses with EDEADLK when this thread already holds the lock', (t) => {
  const workspace = makeWorkspace(t);
  const lockPath = path.join(workspace, '.ralph', 'loop.lock');
  const [held, refused, probe] = attempt(workspace, [
    { op: 'tryAcquire', prompt: 'mine' },
    { op: 'acquireBlocking', prompt: 'again' },
    { op: 'readExisting' },
  ]);
  assert.equal(held.ok, true);
  assert.equal(refused.ok, false);
  assert.equal(refused.name, 'LockError');
  assert.equal(refused.code, 'EDEADLK');
  assert.ok(refused.message.includes(lockPath), refused.message);
  assert.equal(probe.result.prompt, 'mine', 'the refusal leaves the holder and its record alone');
});

// A hard link is refused outright (EMLINK), but a symlinked directory on
// the way still leads a second path to the same inode.
test('EDEADLK also covers another path to the same inode (through a symlinked directory)', (t) => {
  if (UNDER_WINE) return t.skip("Wine's symlinks are not Windows' (a path through this one does not resolve)");
  const workspace = makeWorkspace(t);
  LoopLock.tryAcquire(workspace, 'create').release();
  fs.symlinkSync(path.join(workspace, '.ralph'), path.join(workspace, 'alias'));
  const [held, refused] = attempt(workspace, [
    { op: 'tryAcquire', prompt: 'mine' },
    { op: 'acquireBlocking', prompt: 'via alias', lockFile: 'alias/loop.lock' },
  ]);
  assert.equal(held.ok, true);
  assert.equal(refused.code, 'EDEADLK');
});

test('acquireBlocking takes the lock again after this thread released it', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'mine');
  guard.release();
  const again = LoopLock.acquireBlocking(workspace, 'after release');
  assert.equal(again.state(), 'held');
  again.release();
});

test('acquireBlocking does not refuse because this thread holds a different lock', (t) => {
  const workspace = makeWorkspace(t);
  const other = LoopLock.tryAcquire(workspace, 'other', { lockFile: 'other.lock' });
  try {
    LoopLock.acquireBlocking(workspace, 'default').release();
  } finally {
    other.release();
  }
});
