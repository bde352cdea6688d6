'use strict';
// The addon's own boundary: it checks what it is given even though lib/
// always passes what it declares, and fails without aborting the process.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const util = require('node:util');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { MAX_METADATA_BYTES } = require('../dist');
const { native } = require('../dist/native.js');
const { FIXTURES, makeWorkspace } = require('./helpers');
const { calls } = require('./bad-input');

// lib/ always passes the binding what it declares, but a native boundary
// must hold without it: a wrong type once aborted the process, a negative
// size wrapped around to "read everything".
test('the internal binding refuses arguments of the wrong type (TypeError) or size (RangeError) without aborting', (t) => {
  const dir = makeWorkspace(t);
  const file = path.join(dir, 'three-mebibytes');
  fs.writeFileSync(file, 'x'.repeat(3 * 1024 * 1024));
  const typeErrors = [
    'b.open(123, true)',
    `b.open(${JSON.stringify(file)}, 1)`,
    'b.open()',
    "b.tryLock('x', false)",
    "b.tryLock(h, 'yes')",
    "b.lockBlocking('x')",
    "b.lockBlocking(h, '/tmp', 'a', 'no')",
    `b.claim('x', 1, '""')`,
    `b.claim(h, '1', '""')`,
    'b.claim(h, 1, 5)',
    "b.read('x', 5)",
    "b.read(h, '5')",
    'b.probe(5)',
    'b.probe()',
    `b.attempt(5, 1, '""', 0)`,
    `b.attempt(${JSON.stringify(file)}, '1', '""', 0)`,
    `b.attempt(${JSON.stringify(file)}, 1, 5, 0)`,
    `b.attempt(${JSON.stringify(file)}, 1, '""')`,
    `b.attempt(${JSON.stringify(file)}, 1, null, 0)`,
    `b.attemptOn('x', 1, '""', 0)`,
    `b.attemptOn(h, '1', '""', 0)`,
    'b.attemptOn(h, 1, 5, 0)',
    `b.attemptOn(h, 1, '""')`,
    `b.attemptOn(h, 1, '""', 0, 'no')`,
    "b.lockBlocking(h, '/tmp', 'a', false, '1', '\"\"')",
    "b.lockBlocking(h, '/tmp', 'a', false, 1, 5)",
    'b.inspect(5)',
    'b.inspect()',
    "b.heldBy('x', 1)",
    "b.heldBy(h, '1')",
    "b.heldBy(h, 1, '0')",
    'b.heldBy(h, 1)',
    "b.identity('x')",
    'b.fileKey({})',
    'b.filesystem(null)',
    "b.close('x')",
  ];
  // A test build's own export (see native/binding.cc), absent from a release build.
  if (native().formatTimestamp !== undefined) typeErrors.push("b.formatTimestamp('x')");
  // The event-loop waiter, absent where the addon leaves it out (Bun, Deno).
  const waits = native().wait !== undefined;
  if (waits) {
    typeErrors.push(
      "b.wait('x', '/tmp', 'a', false, 1, '\"\"', () => {})",
      "b.wait(h, 5, 'a', false, 1, '\"\"', () => {})",
      "b.wait(h, '/tmp', null, false, 1, '\"\"', () => {})",
      "b.wait(h, '/tmp', 'a', 'no', 1, '\"\"', () => {})",
      "b.wait(h, '/tmp', 'a', false, '1', '\"\"', () => {})",
      "b.wait(h, '/tmp', 'a', false, 1, {}, () => {})",
      "b.wait(h, '/tmp', 'a', false, 1, '\"\"', 'not a function')",
      "b.wait(h, '/tmp', 'a', false, 1, '\"\"')",
      "b.cancelWait('x')",
    );
  }
  const rangeErrors = [
    'b.read(h, -1)',
    'b.read(h, -2)',
    'b.read(h, 1.5)',
    'b.read(h, NaN)',
    'b.read(h, Infinity)',
    `b.read(h, ${MAX_METADATA_BYTES + 1})`,
    'b.heldBy(h, -1, 0)',
    'b.heldBy(h, 2 ** 32, 0)',
    'b.heldBy(h, 1, NaN)',
    'b.heldBy(h, 1, 8.64e15 + 1)',
    `b.claim(h, -1, '""')`,
    `b.claim(h, 2 ** 32, '""')`,
    `b.attempt(${JSON.stringify(file)}, -1, '""', 0)`,
    `b.attempt(${JSON.stringify(file)}, 1, '""', -1)`,
    `b.attempt(${JSON.stringify(file)}, 1, '""', 1.5)`,
    `b.attempt(${JSON.stringify(file)}, 1, '""', 2 ** 53)`,
    `b.attemptOn(h, -1, '""', 0)`,
    `b.attemptOn(h, 1, null, -1)`,
    "b.lockBlocking(h, '/tmp', 'a', false, -1, '\"\"')",
    ...(waits ? ["b.wait(h, '/tmp', 'a', false, -1, '\"\"', () => {})", 'b.cancelWait(-1)', 'b.cancelWait(1.5)'] : []),
  ];
  const within = `b.read(h, ${MAX_METADATA_BYTES})`;
  const input = JSON.stringify({ file, calls: [...typeErrors, ...rangeErrors, within] });
  const run = spawnSync(process.execPath, [path.join(FIXTURES, 'binding-calls.js'), input], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const outcomes = run.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const last = outcomes.at(-1)?.call ?? 'the first call';
  assert.equal(run.signal, null, `the child died of ${run.signal} after ${last}: ${run.stderr.slice(0, 300)}`);
  assert.equal(run.status, 0, run.stderr);
  const byCall = new Map(outcomes.map((outcome) => [outcome.call, outcome]));
  for (const call of typeErrors) assert.equal(byCall.get(call)?.threw, 'TypeError', JSON.stringify(byCall.get(call)));
  for (const call of rangeErrors) assert.equal(byCall.get(call)?.threw, 'RangeError', JSON.stringify(byCall.get(call)));
  // By name: the addon numbers errors as libuv does, which is errno only on POSIX.
  const tooLarge = byCall.get(within)?.errno;
  assert.equal(tooLarge && util.getSystemErrorName(-tooLarge), 'EFBIG', 'a file over the bound still reads as too large');
});

test('a handle that names no open file fails with EBADF and names no syscall, since none ran', (t) => {
  const file = path.join(makeWorkspace(t), 'file');
  fs.writeFileSync(file, '');
  const b = native();
  const h = b.open(file, false);
  b.close(h);
  for (const call of [() => b.identity(h), () => b.tryLock(h, false), () => b.lockBlocking(h, '/', 'x')]) {
    // By name: the addon numbers errors as libuv does (see isErrno).
    assert.throws(call, (error) => util.getSystemErrorName(-error.errno) === 'EBADF' && !('syscall' in error));
  }
});
