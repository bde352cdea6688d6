'use strict';
// Hard links: O_NOFOLLOW refuses a symlink, but a hard link is the file
// itself under another name, so every locking call refuses a lock file with
// another link, before or while it waits.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { LockError, LoopLock } = require('../dist');
const { lockPathIn, makeWorkspace } = require('./helpers');
const { assertLockError } = require('./bad-input');

// O_NOFOLLOW refuses a symlink, but a hard link is the file itself under
// another name: writing the record through it would overwrite that file.
test('a lock file with another hard link is LockError EMLINK for every locking call, and the other file is unchanged byte for byte', async (t) => {
  const workspace = makeWorkspace(t);
  const outside = makeWorkspace(t);
  const other = path.join(outside, 'precious.bin');
  const bytes = Buffer.from(Array.from({ length: 1500 }, (_, i) => (i * 31 + 7) % 256));
  fs.writeFileSync(other, bytes);
  fs.utimesSync(other, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
  const before = fs.statSync(other);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  fs.linkSync(other, lockPathIn(workspace));

  assertLockError(() => LoopLock.tryAcquire(workspace, 'p'), 'EMLINK', lockPathIn(workspace));
  assertLockError(() => LoopLock.acquireBlocking(workspace, 'p'), 'EMLINK', lockPathIn(workspace));
  await assert.rejects(LoopLock.acquire(workspace, 'p'), (error) => {
    assert.ok(error instanceof LockError, error.message);
    assert.equal(error.code, 'EMLINK', error.message);
    assert.ok(error.message.includes(lockPathIn(workspace)), error.message);
    return true;
  });
  assert.deepEqual(fs.readFileSync(other), bytes);
  const after = fs.statSync(other);
  assert.equal(after.mtimeMs, before.mtimeMs);
  assert.equal(after.nlink, 2);
  assert.equal(LoopLock.isLocked(workspace), false, 'no refused call kept a lock');
});

test('a hard link made while acquire() waits: the wait fails with EMLINK when the lock frees, writing nothing', async (t) => {
  const workspace = makeWorkspace(t);
  const outside = makeWorkspace(t);
  const holder = LoopLock.tryAcquire(workspace, 'holder');
  const record = fs.readFileSync(lockPathIn(workspace));
  const waiting = LoopLock.acquire(workspace, 'waiter');
  const other = path.join(outside, 'link');
  fs.linkSync(lockPathIn(workspace), other);
  holder.release();
  await assert.rejects(waiting, (error) => error instanceof LockError && error.code === 'EMLINK');
  assert.deepEqual(fs.readFileSync(other), record);
  assert.equal(LoopLock.isLocked(workspace), false, 'the refused waiter released what it locked');
});
