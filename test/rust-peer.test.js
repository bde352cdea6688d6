'use strict';
// A real Rust peer (test/rust-peer) built from Debian's packaged crates with
// the reference's serde, serde_json, chrono and flock: the record each side
// writes is read by the other, and each side's lock excludes the other.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { before, test } = require('node:test');
const { AlreadyLockedError, LoopLock } = require('../dist');
const { lockPathIn, makeWorkspace } = require('./helpers');
const { buildPeer, missingToolchain, startPeer } = require('./rust-peer-tool');

const skip = missingToolchain();

before(() => {
  if (!skip) buildPeer();
});

// chrono prints nanoseconds; loop-lock writes and keeps milliseconds.
const asChrono = (date) => date.toISOString().replace('Z', '000000Z');
const asLoopLock = (record) => ({ pid: record.pid, started: new Date(`${record.started.slice(0, 23)}Z`), prompt: record.prompt });
// serde_json's to_string_pretty of a record, as loop-lock lays it out: chrono
// writes no fraction for a whole second, loop-lock always writes ".000".
const withMilliseconds = (pretty) => pretty.replace(/(T\d\d:\d\d:\d\d)Z"/, '$1.000Z"');

test("serde and chrono read loop-lock's record: same pid, prompt and started, and the same bytes", { skip }, async (t) => {
  const workspace = makeWorkspace(t);
  const peer = startPeer(t);
  const guard = LoopLock.tryAcquire(workspace, 'node holds');
  t.after(() => guard.release());

  const { record, pretty } = await peer.ask('read', 'read', guard.lockPath);
  assert.deepEqual(record, { pid: process.pid, started: asChrono(guard.metadata.started), prompt: 'node holds' });
  assert.equal(fs.readFileSync(guard.lockPath, 'utf8'), withMilliseconds(pretty), 'what to_string_pretty writes');
});

test('a Rust holder makes tryAcquire throw AlreadyLockedError naming it; isLocked and status agree', { skip }, async (t) => {
  const workspace = makeWorkspace(t);
  const peer = startPeer(t);
  const { record } = await peer.ask('held', 'hold', lockPathIn(workspace), 'rust holds');
  assert.equal(record.pid, peer.pid);
  assert.match(record.started, /\.\d{9}Z$/);
  const expected = asLoopLock(record);

  assert.throws(
    () => LoopLock.tryAcquire(workspace, 'node'),
    (error) => {
      assert.ok(error instanceof AlreadyLockedError);
      assert.equal(error.code, 'ELOCKED');
      assert.deepEqual(error.holder, expected);
      return true;
    },
  );
  assert.equal(LoopLock.isLocked(workspace), true);
  assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: expected });
  assert.deepEqual(LoopLock.readExisting(workspace), expected);

  await peer.ask('released', 'release');
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'node').release();
});

test("the Rust peer's LOCK_NB fails while loop-lock holds, naming loop-lock's holder", { skip }, async (t) => {
  const workspace = makeWorkspace(t);
  const peer = startPeer(t);
  const guard = LoopLock.tryAcquire(workspace, 'node holds');
  const before = fs.readFileSync(guard.lockPath);

  const held = await peer.ask('try', 'try', guard.lockPath);
  assert.deepEqual(held, {
    event: 'try',
    acquired: false,
    holder: { pid: process.pid, started: asChrono(guard.metadata.started), prompt: 'node holds' },
  });
  assert.deepEqual(fs.readFileSync(guard.lockPath), before, 'the losing attempt wrote nothing');

  guard.release();
  assert.deepEqual(await peer.ask('try', 'try', guard.lockPath), { event: 'try', acquired: true });
});

test('a pending acquire() gets the lock when the Rust holder releases', { skip }, async (t) => {
  const workspace = makeWorkspace(t);
  const peer = startPeer(t);
  await peer.ask('held', 'hold', lockPathIn(workspace), 'rust holds');

  let settled = false;
  const pending = LoopLock.acquire(workspace, 'node waits');
  pending.finally(() => {
    settled = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(settled, false, 'acquire() waits while the Rust peer holds the lock');

  await peer.ask('released', 'release');
  const guard = await pending;
  t.after(() => guard.release());
  assert.equal(guard.metadata.prompt, 'node waits');
  const { record } = await peer.ask('read', 'read', guard.lockPath);
  assert.deepEqual(record, { pid: process.pid, started: asChrono(guard.metadata.started), prompt: 'node waits' });
  assert.equal((await peer.ask('try', 'try', guard.lockPath)).acquired, false);
});

test('prompts with quotes, backslashes, control characters and non-ASCII round-trip both ways', { skip }, async (t) => {
  const workspace = makeWorkspace(t);
  const peer = startPeer(t);
  const prompts = [
    'say "hi" and \'bye\'',
    'C:\\path\\to \\n is not a newline \\u0000',
    'nul\u0000 newline\n tab\t unit separator\u001f end',
    'naïve café, Grüße, 日本語, Ελληνικά',
    'emoji 😀 👍🏽 👨‍👩‍👧',
    '"\\\u0000\n\t\u001fé😀',
  ];
  for (const prompt of prompts) {
    const guard = LoopLock.tryAcquire(workspace, prompt);
    const { record, pretty } = await peer.ask('read', 'read', guard.lockPath);
    guard.release();
    assert.equal(record.prompt, prompt, 'serde reads what loop-lock wrote');
    assert.equal(fs.readFileSync(guard.lockPath, 'utf8'), withMilliseconds(pretty), 'escaped as serde_json escapes');

    const held = await peer.ask('held', 'hold', lockPathIn(workspace), prompt);
    assert.equal(held.record.prompt, prompt, 'the peer got the prompt intact');
    assert.equal(LoopLock.status(workspace).holder.prompt, prompt, 'loop-lock reads what serde wrote');
    await peer.ask('released', 'release');
  }
});
