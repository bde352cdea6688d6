'use strict';
// worker_threads: the addon is context-aware, a worker's lock excludes the
// main thread like another process would, and a worker's end releases it.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { setTimeout: sleep } = require('node:timers/promises');
const { Worker } = require('node:worker_threads');
const { AlreadyLockedError, LoopLock } = require('../dist');
const { FIXTURES, makeWorkspace, waitUntilWaiting } = require('./helpers');

/** Starts the holder worker; `next(event)` resolves with its next such message. */
function startWorker(t, workerData) {
  const worker = new Worker(path.join(FIXTURES, 'worker-holder.js'), { workerData });
  const inbox = [];
  const waiting = [];
  worker.on('message', (message) => {
    const index = waiting.findIndex((w) => w.event === message.event);
    if (index >= 0) waiting.splice(index, 1)[0].resolve(message);
    else inbox.push(message);
  });
  const exited = new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', resolve);
  });
  t.after(() => worker.terminate());
  return {
    worker,
    exited,
    next(event) {
      const index = inbox.findIndex((m) => m.event === event);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]);
      return new Promise((resolve) => waiting.push({ event, resolve }));
    },
  };
}

test('a worker loads the addon and holds the lock against the main thread', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startWorker(t, { workspace, prompt: 'worker task', mode: 'try' });
  const locked = await holder.next('locked');
  assert.equal(locked.pid, process.pid);
  assert.notEqual(locked.threadId, 0);

  assert.equal(LoopLock.isLocked(workspace), true);
  assert.throws(
    () => LoopLock.tryAcquire(workspace, 'main task'),
    (error) => error instanceof AlreadyLockedError && error.holder.prompt === 'worker task',
  );

  holder.worker.postMessage('release');
  await holder.next('released');
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'main task').release();
});

test('the main thread holding the lock makes a worker fail with AlreadyLockedError', async (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'main holds');
  try {
    const contender = startWorker(t, { workspace, prompt: 'worker wants', mode: 'try' });
    const error = await contender.next('error');
    assert.equal(error.name, 'AlreadyLockedError');
    assert.equal(error.holder.prompt, 'main holds');
  } finally {
    guard.release();
  }
});

test('a worker that calls process.exit() without releasing frees the lock', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startWorker(t, { workspace, prompt: 'exits', mode: 'try' });
  await holder.next('locked');
  holder.worker.postMessage('exit');
  await holder.exited;
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'main').release();
});

test('a worker terminated in the middle of a busy loop frees the lock', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startWorker(t, { workspace, prompt: 'terminated', mode: 'try' });
  await holder.next('locked');
  holder.worker.postMessage('hang');
  await holder.next('hanging');
  await holder.worker.terminate();
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'main').release();
});

test('acquireBlocking in a worker waits for the main thread to release', async (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'main first');
  let released = false;
  try {
    const waiter = startWorker(t, { workspace, prompt: 'worker second', mode: 'blocking' });
    await waiter.next('waiting');
    await waitUntilWaiting(process.pid, guard.lockPath, 'the worker is waiting');
    assert.equal(LoopLock.readExisting(workspace).prompt, 'main first');
    guard.release();
    released = true;
    const locked = await waiter.next('locked');
    assert.equal(locked.prompt, 'worker second');
    assert.equal(LoopLock.status(workspace).holder.prompt, 'worker second');
    waiter.worker.postMessage('release');
    await waiter.next('released');
  } finally {
    if (!released) guard.release();
  }
});

test('worker.terminate() ends a worker waiting in acquireBlocking', { timeout: 30_000 }, async (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'main holds');
  try {
    const waiter = startWorker(t, { workspace, prompt: 'never', mode: 'blocking' });
    await waiter.next('waiting');
    await waitUntilWaiting(process.pid, guard.lockPath, 'the worker is waiting');
    // A blocked worker used to ignore terminate() forever; the race only
    // stops a hang, and is generous for emulated runs.
    const ended = await Promise.race([waiter.worker.terminate().then(() => 'terminated'), sleep(20_000, 'still waiting')]);
    assert.equal(ended, 'terminated');
    assert.equal(LoopLock.status(workspace).holder.prompt, 'main holds');
  } finally {
    guard.release();
  }
});

test('process.exit() exits promptly while a worker waits in acquireBlocking', (t) => {
  const workspace = makeWorkspace(t);
  const source = `
    const { Worker } = require('node:worker_threads');
    const { LoopLock } = require(${JSON.stringify(require.resolve('../dist'))});
    const guard = LoopLock.tryAcquire(${JSON.stringify(workspace)}, 'main holds');
    const worker = new Worker(${JSON.stringify(path.join(FIXTURES, 'worker-holder.js'))}, {
      workerData: { workspace: ${JSON.stringify(workspace)}, prompt: 'never', mode: 'blocking' },
    });
    worker.on('message', () => setTimeout(() => process.exit(5), 200));`;
  // A blocked worker used to keep the process forever: exiting at all, with
  // the code asked for, is the proof (the timeout only stops a hang; it is
  // generous for emulated runs, where starting Node alone takes seconds).
  const run = spawnSync(process.execPath, ['-e', source], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.signal, null, 'process.exit() hung until the timeout killed it');
  assert.equal(run.status, 5, run.stderr);
});

test('the main thread keeps working after workers that loaded the addon are gone', async (t) => {
  const workspace = makeWorkspace(t);
  for (let i = 0; i < 4; i++) {
    const holder = startWorker(t, { workspace, prompt: `worker ${i}`, mode: 'try' });
    await holder.next('locked');
    await holder.worker.terminate();
  }
  const guard = LoopLock.tryAcquire(workspace, 'main after workers');
  assert.equal(guard.state(), 'held');
  guard.release();
  assert.equal(LoopLock.readExisting(workspace).prompt, 'main after workers');
});
