'use strict';

// A guard must notice when its lock file stops being the file at the lock
// path: after that a newcomer locks the new file while the guard still
// believes it excludes everyone. These tests break the file the ways it gets
// broken in practice (rm -rf, git clean, an editor saving by rename) and check
// state(), isIntact() and verify() for each. (identity.test.js covers plain
// unlinks, renames away, symlinks and in-place rewrites.)

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { LoopLock } = require('../dist');
const { assertCompromised, makeWorkspace: workspace } = require('./helpers');

function lockPath(dir) {
  return path.join(dir, '.ralph', 'loop.lock');
}

function acquire(t, dir, prompt = 'compromised test') {
  const guard = LoopLock.tryAcquire(dir, prompt);
  t.after(() => guard.release());
  return guard;
}


// What makes a compromised guard dangerous, and what a check must reveal: a
// newcomer gets "the" lock while the old guard still holds its descriptor.
function assertNewcomerGetsLock(t, dir) {
  const newcomer = acquire(t, dir, 'newcomer');
  assert.equal(newcomer.state(), 'held');
  return newcomer;
}

test('the check keeps no timer or handle alive: a guard adds no active resource', (t) => {
  const dir = workspace(t);
  const before = process.getActiveResourcesInfo().length;
  const guard = acquire(t, dir);
  guard.state();
  guard.verify();
  assert.equal(process.getActiveResourcesInfo().length, before);
});

test('rm -rf .ralph while held: state() is removed and verify() throws ECOMPROMISED', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir);
  execFileSync('rm', ['-rf', path.join(dir, '.ralph')]);
  assertCompromised(guard, 'removed');
  assertNewcomerGetsLock(t, dir);
  // The newcomer's file now sits at the path: another lock, not none.
  assertCompromised(guard, 'replaced');
});

test('ln while held: state() is linked, verify() throws ECOMPROMISED, a newcomer is refused; unlinking heals it', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir);
  const link = path.join(workspace(t), 'copy');
  execFileSync('ln', [lockPath(dir), link]);
  assertCompromised(guard, 'linked');
  assert.throws(
    () => LoopLock.tryAcquire(dir, 'newcomer'),
    (error) => error.code === 'EMLINK' && error.path === lockPath(dir),
  );
  fs.unlinkSync(link);
  assert.equal(guard.state(), 'held');
});

const noGit = spawnSync('git', ['--version'], { stdio: 'ignore' }).status === 0 ? false : 'git is not installed';

test('git clean -fdx in a repository removes the untracked lock: the guard reports removed', { skip: noGit }, (t) => {
  const dir = workspace(t);
  const git = (...args) =>
    execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], {
      cwd: dir,
      stdio: 'pipe',
    });
  git('init', '-q');
  fs.writeFileSync(path.join(dir, 'tracked.txt'), 'tracked\n');
  git('add', 'tracked.txt');
  git('commit', '-q', '-m', 'initial');
  const guard = acquire(t, dir);
  const cleaned = git('clean', '-fdx').toString();
  assert.match(cleaned, /\.ralph/);
  assert.equal(fs.existsSync(lockPath(dir)), false);
  assert.equal(fs.readFileSync(path.join(dir, 'tracked.txt'), 'utf8'), 'tracked\n');
  assertCompromised(guard, 'removed');
  assertNewcomerGetsLock(t, dir);
  assertCompromised(guard, 'replaced');
});

test('an editor saving by write-to-temp and rename over the lock: the guard reports replaced', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir);
  const temp = path.join(dir, '.ralph', '.loop.lock.swp');
  fs.writeFileSync(temp, fs.readFileSync(lockPath(dir)));
  fs.renameSync(temp, lockPath(dir));
  assertCompromised(guard, 'replaced');
  assertNewcomerGetsLock(t, dir);
  assertCompromised(guard, 'replaced');
});

test('sed -i on the lock file (GNU sed renames a new file over it): the guard reports replaced', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir, 'edited by sed');
  execFileSync('sed', ['-i', 's/edited by sed/edited/', lockPath(dir)]);
  assert.match(fs.readFileSync(lockPath(dir), 'utf8'), /"prompt": "edited"/);
  assertCompromised(guard, 'replaced');
});

test('the lock directory moved away and a file put in its place: removed, not an ENOTDIR error', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir);
  fs.renameSync(path.join(dir, '.ralph'), path.join(dir, 'old-ralph'));
  fs.writeFileSync(path.join(dir, '.ralph'), '');
  assertCompromised(guard, 'removed');
});

test('a hard link keeps the inode alive but the path is gone: removed', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir);
  fs.linkSync(lockPath(dir), path.join(dir, 'second-name'));
  fs.unlinkSync(lockPath(dir));
  assertCompromised(guard, 'removed');
});

test('releasing a compromised guard leaves the newcomer on the new file held', (t) => {
  const dir = workspace(t);
  const guard = acquire(t, dir);
  fs.rmSync(path.join(dir, '.ralph'), { recursive: true });
  const newcomer = assertNewcomerGetsLock(t, dir);
  guard.release();
  assert.equal(newcomer.state(), 'held');
  assert.equal(LoopLock.status(dir).holder.prompt, 'newcomer');
});
