'use strict';
// A workspace shared by a group: members work with umask 002 in a setgid
// directory, so whatever one of them creates, every other can write. The
// lock file must follow the umask as the Rust reference's does (0666 less
// the umask), or the second member cannot lock what the first created.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { LoopLock } = require('../dist');
const { FIXTURES, makeWorkspace } = require('./helpers');

const canSwitchUsers =
  process.getuid() === 0 && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'needs root and setpriv to run children as two users of one group';

// Two users that exist nowhere but here: setpriv needs no passwd entry.
const GROUP = 23_000;
const ALICE = 23_001;
const BOB = 23_002;

/** Runs test/fixtures/attempt.js as `uid` in GROUP, with umask 002. */
function attemptAs(uid, workspace, steps) {
  const run = spawnSync(
    'setpriv',
    [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      `--groups=${GROUP}`,
      'sh',
      '-c',
      'umask 002 && exec "$@"',
      'sh',
      process.execPath,
      path.join(FIXTURES, 'attempt.js'),
      JSON.stringify({ workspace, steps }),
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('with umask 002 in a group-shared workspace, one member creates the lock file and another locks it', { skip: canSwitchUsers }, (t) => {
  const root = makeWorkspace(t);
  fs.chmodSync(root, 0o755);
  const workspace = path.join(root, 'shared');
  fs.mkdirSync(workspace);
  fs.chownSync(workspace, ALICE, GROUP);
  fs.chmodSync(workspace, 0o2775);

  const [alice] = attemptAs(ALICE, workspace, [{ op: 'tryAcquire', prompt: 'alice' }]);
  assert.equal(alice.ok, true, alice.message);
  const lockPath = path.join(workspace, LoopLock.LOCK_FILE);
  const stat = fs.statSync(lockPath);
  assert.equal(stat.mode & 0o777, 0o664, `mode ${(stat.mode & 0o777).toString(8)}`);
  assert.equal(stat.gid, GROUP);

  const [bob] = attemptAs(BOB, workspace, [{ op: 'tryAcquire', prompt: 'bob' }]);
  assert.equal(bob.ok, true, bob.message);
  assert.equal(LoopLock.readExisting(workspace)?.prompt, 'bob');
});
