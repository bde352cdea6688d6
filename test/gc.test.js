'use strict';
// A guard dropped without release() is released when collected, with one
// process warning naming the lock path, as Node does for a FileHandle.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { FIXTURES, makeWorkspace } = require('./helpers');

function runAbandon(kept, abandoned) {
  const run = spawnSync(process.execPath, ['--expose-gc', path.join(FIXTURES, 'gc-abandon.js'), kept, ...abandoned], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  return { report: JSON.parse(run.stdout), stderr: run.stderr };
}

test('abandoned guards are released after garbage collection, with exactly one warning naming a path', (t) => {
  const kept = makeWorkspace(t);
  const abandoned = [makeWorkspace(t), makeWorkspace(t)];
  const { report, stderr } = runAbandon(kept, abandoned);

  assert.deepEqual(report.heldBefore, [true, true], 'the guards held their locks until collected');
  assert.deepEqual(report.heldAfter, [false, false]);
  assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
  const [warning] = report.warnings;
  assert.equal(warning.code, 'LOOP_LOCK_GC_RELEASE');
  const lockPaths = abandoned.map((workspace) => path.join(workspace, '.ralph', 'loop.lock'));
  assert.ok(
    lockPaths.some((lockPath) => warning.message.includes(lockPath)),
    `the warning names an abandoned lock: ${warning.message}`,
  );
  assert.equal(stderr.split('LOOP_LOCK_GC_RELEASE').length - 1, 1, 'printed once on stderr');
});

test('a guard that is still referenced survives garbage collection', (t) => {
  const kept = makeWorkspace(t);
  const { report } = runAbandon(kept, [makeWorkspace(t)]);
  assert.equal(report.keptHeld, true);
});

test('aborted waits leave nothing to collect; a guard a wait handed out is collected like any other', (t) => {
  const [abortedIn, waitedIn] = [makeWorkspace(t), makeWorkspace(t)];
  const run = spawnSync(process.execPath, ['--expose-gc', path.join(FIXTURES, 'gc-waits.js'), abortedIn, waitedIn], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.deepEqual(report.afterAborts, { rejected: 200, warnings: 0, keptHeld: true });
  assert.equal(report.waitedHeld, true, 'the wait handed out a guard holding the lock');
  assert.equal(report.waitedHeldAfter, false, 'collecting the dropped guard released the lock');
  assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
  assert.equal(report.warnings[0].code, 'LOOP_LOCK_GC_RELEASE');
  assert.ok(report.warnings[0].message.includes(path.join(waitedIn, '.ralph', 'loop.lock')), report.warnings[0].message);
});
