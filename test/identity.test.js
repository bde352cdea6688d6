'use strict';
// A guard whose file is deleted or replaced no longer excludes anyone: a
// newcomer locks the new file. The guard can tell, and verify() says so.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { UNDER_WINE, assertCompromised, makeWorkspace } = require('./helpers');


test('a deleted lock file: the old guard reports removed, then replaced once a newcomer locks a new file', (t) => {
  if (process.platform === 'win32') {
    return t.skip("Windows keeps a deleted file's name until its last handle closes, and a newcomer cannot create a file there meanwhile");
  }
  const workspace = makeWorkspace(t);
  const old = LoopLock.tryAcquire(workspace, 'old');
  fs.unlinkSync(old.lockPath);
  assertCompromised(old, 'removed');

  const newcomer = LoopLock.tryAcquire(workspace, 'newcomer');
  try {
    assert.equal(newcomer.state(), 'held');
    assert.doesNotThrow(() => newcomer.verify());
    assert.equal(LoopLock.readExisting(workspace).prompt, 'newcomer');
    assertCompromised(old, 'replaced');
  } finally {
    newcomer.release();
    old.release();
  }
  assert.equal(old.state(), 'released');
});

test('a removed .ralph directory leaves the guard removed', (t) => {
  if (process.platform === 'win32') {
    return t.skip("Windows keeps a deleted file's name until its last handle closes, and a newcomer cannot create a file there meanwhile");
  }
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'held');
  try {
    fs.rmSync(path.join(workspace, '.ralph'), { recursive: true });
    assertCompromised(guard, 'removed');
    assert.equal(LoopLock.isLocked(workspace), false);
  } finally {
    guard.release();
  }
});

test('a lock file moved aside with a new file in its place: a newcomer locks the new file, the old guard reports replaced', (t) => {
  const workspace = makeWorkspace(t);
  const old = LoopLock.tryAcquire(workspace, 'old');
  fs.renameSync(old.lockPath, `${old.lockPath}.bak`);
  fs.writeFileSync(old.lockPath, '');

  assertCompromised(old, 'replaced');
  assert.equal(LoopLock.isLocked(workspace), false, 'the new file is not locked by the old guard');
  const newcomer = LoopLock.tryAcquire(workspace, 'newcomer');
  try {
    assert.equal(newcomer.state(), 'held');
  } finally {
    newcomer.release();
    old.release();
  }
});

test('a file renamed over the lock file unlinks the locked inode, yet the guard reports replaced', (t) => {
  if (UNDER_WINE) return t.skip('Wine refuses a rename over an open file (EPERM), though it was opened sharing delete');
  // What is at the path decides: another file there is a lock a newcomer
  // can take, whether the old inode still has links or not.
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'old');
  const replacement = path.join(workspace, '.ralph', 'replacement');
  fs.writeFileSync(replacement, '');
  fs.renameSync(replacement, guard.lockPath);
  try {
    assertCompromised(guard, 'replaced');
    assert.equal(LoopLock.isLocked(workspace), false);
  } finally {
    guard.release();
  }
});

test('a lock file replaced by a symlink to itself elsewhere reports replaced', (t) => {
  if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'held');
  const moved = path.join(workspace, 'moved.lock');
  try {
    fs.renameSync(guard.lockPath, moved);
    fs.symlinkSync(moved, guard.lockPath);
    assertCompromised(guard, 'replaced');
  } finally {
    guard.release();
  }
});

test('a lock file renamed away, with nothing at the path, reports removed', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'held');
  try {
    fs.renameSync(guard.lockPath, path.join(workspace, 'elsewhere.lock'));
    assertCompromised(guard, 'removed');
  } finally {
    guard.release();
  }
});

test('rewriting the content in place does not compromise the guard', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'held');
  try {
    fs.writeFileSync(guard.lockPath, 'scribbled over');
    assert.equal(guard.state(), 'held');
    assert.doesNotThrow(() => guard.verify());
  } finally {
    guard.release();
  }
});
