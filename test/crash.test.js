'use strict';

// A holder killed while writing its metadata leaves part of a record behind.
// While it still holds the lock, and after the kernel has released it,
// readers must report "no readable holder" (holder null, LockParseError),
// never a record nobody wrote; the next acquirer must write a whole record.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { once } = require('node:events');
const { LoopLock, AlreadyLockedError, LockParseError } = require('../dist');
const { makeWorkspace: workspace } = require('./helpers');

const FIXTURES = path.join(__dirname, 'fixtures');

function lockPath(dir) {
  return path.join(dir, '.ralph', 'loop.lock');
}

// The record as loop-lock (and serde_json's to_string_pretty) writes it.
function recordText(pid, started, prompt) {
  return `{\n  "pid": ${pid},\n  "started": "${started.toISOString()}",\n  "prompt": ${JSON.stringify(prompt)}\n}`;
}

function assertNoReadableHolder(dir, { locked }) {
  assert.deepEqual(LoopLock.status(dir), { locked, holder: null });
  assert.equal(LoopLock.isLocked(dir), locked);
  assert.equal(LoopLock.readExisting(dir), null);
  assert.throws(() => LoopLock.readExisting(dir, { strict: true }), LockParseError);
  if (locked) {
    assert.throws(
      () => LoopLock.tryAcquire(dir, 'must lose'),
      (error) => error instanceof AlreadyLockedError && error.holder === null,
    );
  }
}

// The next acquirer succeeds and leaves exactly its own record: no byte of
// the dead holder's partial record survives after it.
function assertNextAcquirerWritesWholeRecord(dir, prompt) {
  const guard = LoopLock.tryAcquire(dir, prompt);
  try {
    const { pid, started } = guard.metadata;
    assert.equal(fs.readFileSync(lockPath(dir), 'utf8'), recordText(pid, started, prompt));
    assert.deepEqual(LoopLock.readExisting(dir), guard.metadata);
    assert.deepEqual(LoopLock.status(dir), { locked: true, holder: guard.metadata });
  } finally {
    guard.release();
  }
}

async function startPartialHolder(t, dir, bytes) {
  fs.mkdirSync(path.dirname(lockPath(dir)), { recursive: true });
  const child = spawn('python3', [path.join(FIXTURES, 'partial-holder.py'), lockPath(dir)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  child.stdin.end(bytes);
  const [line] = await once(child.stdout, 'data');
  assert.equal(line.toString(), 'ready\n');
  return child;
}

async function kill(child) {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [code, signal] = await exited;
  assert.equal(signal, 'SIGKILL', `exit code ${code}`);
}

// The Python holder writes the way the Rust reference does (truncate, then
// write), cut inside the pid, the timestamp, the prompt, and one byte short
// of the closing brace. The longer cuts also outlast the next acquirer's
// shorter record, whose truncate must remove them.
const record = recordText(4242, new Date('2025-01-02T03:04:05.678Z'), 'finish the migration, then run the tests');
const cuts = [1, 12, record.indexOf('"started"') + 15, record.indexOf('"prompt"') + 20, record.length - 1];

for (const cut of cuts) {
  test(`a holder killed after writing ${cut} of ${record.length} bytes: readers see no holder, the next acquirer rewrites the file whole`, async (t) => {
    const dir = workspace(t);
    const holder = await startPartialHolder(t, dir, record.slice(0, cut));
    assertNoReadableHolder(dir, { locked: true });
    await kill(holder);
    assertNoReadableHolder(dir, { locked: false });
    assertNextAcquirerWritesWholeRecord(dir, 'after the crash');
  });
}

test('a loop-lock holder killed after writing one page of a long record leaves nothing readable', (t) => {
  const dir = workspace(t);
  // The older record is longer than a page, so the new head lands on it.
  LoopLock.tryAcquire(dir, 'o'.repeat(20_000)).release();
  const result = spawnSync(
    'prlimit',
    ['--fsize=4096', '--', process.execPath, path.join(FIXTURES, 'cut-short-holder.js'), dir, '10000'],
    { encoding: 'utf8' },
  );
  assert.equal(result.signal, 'SIGXFSZ', result.stderr);
  assert.equal(result.stdout, '');
  // The file holds the first page of the new record on top of the old one.
  const bytes = fs.readFileSync(lockPath(dir));
  assert.ok(bytes.length > 4096);
  assert.match(bytes.subarray(4096).toString(), /^o+"\n}$/);
  assertNoReadableHolder(dir, { locked: false });
  assertNextAcquirerWritesWholeRecord(dir, 'after the cut');
});
