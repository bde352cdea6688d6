'use strict';
// The thread's one notifier (native/notifier.h), shared by its waits and its
// watches: what a blocking wait reads from it still reaches the watches.
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { lockPathIn, makeWorkspace, runtime } = require('./helpers');

const noNotifier =
  process.platform !== 'linux' || runtime !== 'node' ? 'no notifier here: waits and watch() poll' : false;

// Holds `second`'s lock; once the parent waits for it, takes `first`'s
// lock, then lets go of `second`'s, and does nothing more until killed: the
// change to `first` happens while the parent is blocked, and nothing after.
const CHILD = `
const { LoopLock } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
const { isWaitingOn } = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});
const [first, second, secondLock] = process.argv.slice(1);
const secondGuard = LoopLock.tryAcquire(second, 'second');
console.log('held');
const timer = setInterval(() => {
  if (!isWaitingOn(process.ppid, secondLock)) return;
  clearInterval(timer);
  globalThis.kept = LoopLock.tryAcquire(first, 'first');
  secondGuard.release();
  setInterval(() => {}, 60_000);
}, 5);
`;

test('a watch sees a change that a blocking wait in its thread read from their notifier', { skip: noNotifier, timeout: 20_000 }, async (t) => {
  const first = makeWorkspace(t);
  const second = makeWorkspace(t);
  LoopLock.tryAcquire(first, 'made').release();
  const child = spawn(process.execPath, ['-e', CHILD, first, second, lockPathIn(second)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, 'held');

  const states = LoopLock.watch(first)[Symbol.asyncIterator]();
  t.after(() => states.return());
  assert.equal((await states.next()).value.locked, false);
  // Blocks this thread while the child takes `first`: the notifier reads
  // that change here, and must tell the watch once the loop runs again.
  const guard = LoopLock.acquireBlocking(second, 'waited');
  guard.release();
  const seen = (await states.next()).value;
  assert.equal(seen.locked, true);
  assert.equal(seen.holder.pid, child.pid);
});
