'use strict';
// acquire({ timeout }): a wait that gives up, alone or racing an abort, and
// leaves no descriptor, timer or lock behind. Holders are other processes
// (fixtures/holder.js) that hold until told to release.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { FileLock, LockError, LoopLock } = require('../dist');
const { makeWorkspace, startChild, until } = require('./helpers');

const hasProc = process.platform === 'linux';
const openFds = () => (hasProc ? fs.readdirSync('/proc/self/fd').length : 0);
const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;

async function holder(t, workspace, prompt) {
  const child = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt, mode: 'try' })]);
  const { pid } = await child.next('locked');
  return { child, pid };
}

/** A LockError ETIMEDOUT naming the lock path and, when given, the holder's pid. */
function timedOut(workspace, pid) {
  return (error) =>
    error instanceof LockError &&
    error.code === 'ETIMEDOUT' &&
    error.path === `${workspace}/.ralph/loop.lock` &&
    error.message.includes(`'${error.path}'`) &&
    (pid === undefined || error.message.includes(`by pid ${pid} `));
}

test('a wait longer than its timeout rejects with ETIMEDOUT naming the path and the holder, leaving nothing behind', { timeout: 60_000 }, async (t) => {
  const workspace = makeWorkspace(t);
  const { child, pid } = await holder(t, workspace, 'long job');
  // A first wait opens what later ones share and keep for a while (the
  // addon's inotify descriptor; under Bun and Deno, fs.watch's).
  await assert.rejects(LoopLock.acquire(workspace, 'warm-up', { timeout: 1 }), timedOut(workspace, pid));
  const fds = openFds();
  const timersBefore = timers();
  await assert.rejects(LoopLock.acquire(workspace, 'impatient', { timeout: 100 }), timedOut(workspace, pid));
  assert.equal(timers(), timersBefore, 'no timer left');
  assert.equal(LoopLock.status(workspace).holder.pid, pid, 'the holder still holds it');
  child.send('release');
  await child.next('released');
  LoopLock.tryAcquire(workspace, 'now free').release();
  // The wait's descriptor is closed at once; the inotify descriptor waits
  // share closes a second after the last wait ends.
  await until(() => openFds() <= fds, `descriptors are back to ${fds}`);
});

test('a release before the timeout resolves the wait, and its timer is cleared', async (t) => {
  const workspace = makeWorkspace(t);
  const { child } = await holder(t, workspace, 'short job');
  const timersBefore = timers();
  const waiting = LoopLock.acquire(workspace, 'patient', { timeout: 600_000 });
  child.send('release');
  const guard = await waiting;
  assert.equal(timers(), timersBefore, 'the timeout is cleared once the lock is taken');
  guard.release();
});

test('timeout 0 is one try: the guard when free, ETIMEDOUT with the holder at once when held', async (t) => {
  const workspace = makeWorkspace(t);
  const guard = await LoopLock.acquire(workspace, 'free', { timeout: 0 });
  guard.release();
  const { pid } = await holder(t, workspace, 'held');
  await assert.rejects(LoopLock.acquire(workspace, 'one try', { timeout: 0 }), timedOut(workspace, pid));
});

test('with a signal too, whichever comes first settles the wait', async (t) => {
  const workspace = makeWorkspace(t);
  await holder(t, workspace, 'held');
  const controller = new AbortController();
  const aborted = LoopLock.acquire(workspace, 'aborted', { timeout: 600_000, signal: controller.signal });
  controller.abort(new Error('stop'));
  await assert.rejects(aborted, /stop/);
  const later = new AbortController();
  await assert.rejects(
    LoopLock.acquire(workspace, 'timed out', { timeout: 50, signal: later.signal }),
    timedOut(workspace),
  );
  later.abort(new Error('too late'));
  await assert.rejects(LoopLock.acquire(workspace, 'x', { timeout: 1, signal: AbortSignal.abort(new Error('before')) }), /before/);
});

test('a timeout that is not a number from 0 up is a TypeError or RangeError, before anything is opened; Infinity is no limit', async (t) => {
  const workspace = makeWorkspace(t);
  for (const bad of ['100', null, 10n, {}]) {
    await assert.rejects(LoopLock.acquire(workspace, 'x', { timeout: bad }), TypeError, String(bad));
  }
  for (const bad of [-1, -0.5, Number.NaN, Number.NEGATIVE_INFINITY]) {
    await assert.rejects(LoopLock.acquire(workspace, 'x', { timeout: bad }), RangeError, String(bad));
  }
  assert.equal(fs.existsSync(`${workspace}/.ralph`), false);
});

test('a timeout beyond a Node timer\'s 24.8 days, or Infinity, waits: LoopLock.acquire and FileLock alike', async (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'holder');
  const sidecar = new FileLock(path.join(workspace, 'data.json'));
  const exclusive = sidecar.tryExclusive();
  const settled = [];
  const waits = [
    LoopLock.acquire(workspace, 'long', { timeout: 2 ** 31 }),
    sidecar.shared({ timeout: 2 ** 31 + 5 }),
  ].map((wait, i) => wait.finally(() => settled.push(i)));
  // A timer of 2^31 ms or more fires after 1 ms in Node: these would have rejected by now.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(settled, []);
  guard.release();
  exclusive.release();
  const [loop, shared] = await Promise.all(waits);
  loop.release();
  shared.release();
  (await LoopLock.acquire(workspace, 'infinite', { timeout: Number.POSITIVE_INFINITY })).release();
});

