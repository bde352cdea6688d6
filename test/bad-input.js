'use strict';
// What the bad-input tests share: every call in the positions it takes its
// arguments, and assertions that an error is a LockError naming the path.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { LockError, LoopLock } = require('../dist');
const { FIXTURES } = require('./helpers');

// Every call, with the workspace and options in the positions it takes them.
const calls = {
  tryAcquire: (workspace, options) => LoopLock.tryAcquire(workspace, 'p', options),
  acquireBlocking: (workspace, options) => LoopLock.acquireBlocking(workspace, 'p', options),
  readExisting: (workspace, options) => LoopLock.readExisting(workspace, options),
  isLocked: (workspace, options) => LoopLock.isLocked(workspace, options),
  status: (workspace, options) => LoopLock.status(workspace, options),
};

/** Asserts `fn` throws a LockError with `code` whose message names `where`. */
function assertLockError(fn, code, where) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof LockError, `expected a LockError, got ${error?.name}: ${error?.message}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(where), `message names ${where}: ${error.message}`);
    return true;
  });
}

/**
 * Runs LoopLock steps in a child (see fixtures/attempt.js), optionally
 * wrapped by `prefix`, running `script` (a copy of attempt.js elsewhere).
 */
function attempt(workspace, steps, prefix = [], script = path.join(FIXTURES, 'attempt.js'), env = process.env) {
  const input = JSON.stringify({ workspace, steps });
  const [command, ...args] = [...prefix, process.execPath, script, input];
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, env });
  assert.equal(run.signal, null, `the child did not finish: ${run.stderr}`);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/** Asserts an attempt outcome is a LockError with `code` naming `where`. */
function assertOutcome(outcome, code, where) {
  assert.equal(outcome.ok, false, JSON.stringify(outcome));
  assert.equal(outcome.isLockError, true, JSON.stringify(outcome));
  assert.equal(outcome.code, code, outcome.message);
  assert.ok(outcome.message.includes(where), `message names ${where}: ${outcome.message}`);
}

/**
 * A file where a directory should be is ENOTDIR. Windows reports it as a
 * missing path (ERROR_PATH_NOT_FOUND), as Node's fs does there: taking the
 * lock fails with ENOENT, and the readers find no lock file.
 */
function assertNotADirectory(name, call, workspace, where) {
  if (process.platform !== 'win32') return assertLockError(() => call(workspace), 'ENOTDIR', where);
  if (name === 'tryAcquire' || name === 'acquireBlocking') return assertLockError(() => call(workspace), 'ENOENT', where);
  const found = call(workspace);
  assert.ok(found === null || found === false || found.locked === false, `${name} finds no lock`);
}

module.exports = { calls, assertLockError, attempt, assertOutcome, assertNotADirectory };
