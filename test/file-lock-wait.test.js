'use strict';
// FileLock's waits: shared() and exclusive() on the event loop across
// processes, abort, timeout, the threadpool left free; worker threads.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { setTimeout: sleep } = require('node:timers/promises');
const { Worker } = require('node:worker_threads');
const { FileLock, LockError } = require('../dist');
const { makeWorkspace, runtime, startChild, until, waitUntilWaiting } = require('./helpers');

// A blocking wait shows that it waits by its inotify watch (see
// waitUntilWaiting); where the addon cannot watch the event loop (Bun,
// Deno) it polls without one, and nothing shows it.
const blockingShows = runtime === 'node' ? false : `${runtime}: a blocking wait polls without inotify, and nothing shows that it waits`;

const hasProc = process.platform === 'linux';
const openFds = () => (hasProc ? fs.readdirSync('/proc/self/fd').length : 0);

test("shared() waits while another process writes, and wakes on its release; exclusive() waits for every reader", async (t) => {
  const file = path.join(makeWorkspace(t), '.ralph', 'agent', 'tasks.jsonl');
  const lock = new FileLock(file);
  const writer = startChild(t, 'file-lock-holder.js', [file, 'exclusive', 'try']);
  await writer.next('held');
  const readers = [lock.shared(), lock.shared()];
  await waitUntilWaiting(process.pid, lock.lockPath, 'shared() waits');
  writer.send('');
  const guards = await Promise.all(readers);
  assert.deepEqual(guards.map((guard) => guard.mode), ['shared', 'shared']);

  const other = startChild(t, 'file-lock-holder.js', [file, 'exclusive', 'wait']);
  await waitUntilWaiting(other.pid, lock.lockPath, "the other process's exclusive() waits");
  guards[0].release();
  const joined = lock.tryShared();
  assert.notEqual(joined, null, 'a reader may still join: flock() queues no writer ahead');
  joined.release();
  guards[1].release();
  await other.next('held');
  assert.equal(lock.tryShared(), null, 'the writer has it');
  other.send('');
  await other.next('released');
});

test('exclusive() in another process, and blocking in a third, wake in turn as each holder releases', { skip: blockingShows }, async (t) => {
  const file = path.join(makeWorkspace(t), 'memories.md');
  const lock = new FileLock(file);
  const mine = lock.tryShared();
  const waiter = startChild(t, 'file-lock-holder.js', [file, 'exclusive', 'wait']);
  const blocked = startChild(t, 'file-lock-holder.js', [file, 'exclusive', 'blocking']);
  await waitUntilWaiting(waiter.pid, lock.lockPath, 'exclusive() waits');
  await waitUntilWaiting(blocked.pid, lock.lockPath, 'exclusiveBlocking() waits');
  const held = new Map([waiter, blocked].map((child) => [child.pid, child.next('held')]));
  mine.release();
  const first = await Promise.race(held.values());
  const [winner, loser] = first.pid === waiter.pid ? [waiter, blocked] : [blocked, waiter];
  winner.send('');
  await winner.next('released');
  await held.get(loser.pid);
  loser.send('');
  await loser.next('released');
});

test('an already-aborted signal rejects with its reason at once, creating nothing', async (t) => {
  const dir = makeWorkspace(t);
  const reason = new Error('stop before starting');
  const lock = new FileLock(path.join(dir, 'agent', 'tasks.jsonl'));
  await assert.rejects(lock.shared({ signal: AbortSignal.abort(reason) }), (error) => error === reason);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('aborting a pending wait rejects with signal.reason and leaves no descriptor or lock', async (t) => {
  const lock = new FileLock(path.join(makeWorkspace(t), 'tasks.jsonl'));
  const writer = lock.tryExclusive();
  await assert.rejects(lock.shared({ timeout: 0 }), { code: 'ETIMEDOUT' }); // warms up the waiter
  const before = openFds();
  for (let i = 0; i < 500; i++) {
    const controller = new AbortController();
    const mode = i % 2 === 0 ? 'shared' : 'exclusive';
    const pending = lock[mode]({ signal: controller.signal });
    if (i % 3 === 0) setImmediate(() => controller.abort(new Error(`abort ${i}`)));
    else controller.abort(new Error(`abort ${i}`));
    await assert.rejects(pending, { message: `abort ${i}` });
  }
  assert.equal(openFds(), before, 'no descriptor left open');
  writer.release();
  const free = lock.tryExclusive();
  assert.notEqual(free, null, 'no lock left held');
  free.release();
});

test('timeout rejects with ETIMEDOUT naming the path; with a signal too, whichever comes first', async (t) => {
  const lock = new FileLock(path.join(makeWorkspace(t), 'tasks.jsonl'));
  const timedOut = (error) => {
    assert.ok(error instanceof LockError);
    assert.equal(error.code, 'ETIMEDOUT');
    assert.equal(error.path, lock.lockPath);
    assert.ok(error.message.includes(lock.lockPath), error.message);
    return true;
  };
  const free = await lock.exclusive({ timeout: 0 });
  assert.equal(free.mode, 'exclusive', 'a free lock is taken before any timeout');
  const before = openFds();
  await assert.rejects(lock.shared({ timeout: 10 }), timedOut);
  await assert.rejects(lock.exclusive({ timeout: 0 }), timedOut);
  const reason = new Error('first');
  await assert.rejects(lock.shared({ timeout: 60_000, signal: AbortSignal.abort(reason) }), (error) => error === reason);
  const controller = new AbortController();
  await assert.rejects(lock.shared({ timeout: 10, signal: controller.signal }), timedOut);
  controller.abort();
  assert.equal(openFds(), before, 'no descriptor left open');

  const later = lock.exclusive({ timeout: 60_000 });
  free.release();
  (await later).release();
});

test('with 64 pending waits, fs.promises.readFile completes while the lock is still held', async (t) => {
  const lock = new FileLock(path.join(makeWorkspace(t), 'tasks.jsonl'));
  const writer = lock.tryExclusive();
  const waits = Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? lock.shared() : lock.exclusive()));
  // The libuv threadpool has 4 threads: a waiter parked on one would starve
  // this read until the lock is released, which comes only after it.
  const result = await Promise.race([fs.promises.readFile(__filename, 'utf8'), sleep(5000, 'starved')]);
  assert.notEqual(result, 'starved', 'readFile must not wait for the lock');
  assert.equal(writer.released, false);
  writer.release();
  for (const wait of waits) wait.then((guard) => guard.release());
  await Promise.all(waits);
});

/** A worker running `body` (with FileLock, file and post in scope); resolves its first message. */
function startWorker(t, file, body) {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { FileLock } = require(${JSON.stringify(require.resolve('../dist'))});
    const file = workerData;
    const post = (message) => parentPort.postMessage(message);
    (async () => { ${body} })();`;
  const worker = new Worker(source, { eval: true, workerData: file });
  t.after(() => worker.terminate());
  const first = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, first };
}

test("a worker's guards exclude the main thread's, and its termination releases them", async (t) => {
  const file = path.join(makeWorkspace(t), 'tasks.jsonl');
  const lock = new FileLock(file);
  const { worker, first } = startWorker(t, file, `
    globalThis.kept = [new FileLock(file).tryShared(), await new FileLock(file + '.other').exclusive()];
    post('held');
    /* A worker with nothing left to do exits, releasing them. */
    setInterval(() => {}, 60_000);`);
  assert.equal(await first, 'held');
  assert.equal(lock.tryExclusive(), null);
  assert.equal(new FileLock(`${file}.other`).tryShared(), null);
  await worker.terminate();
  // Node has closed them when terminate() resolves; Deno a moment later.
  const isFree = (other) => {
    const guard = other.tryExclusive();
    guard?.release();
    return guard !== null;
  };
  await until(() => isFree(lock) && isFree(new FileLock(`${file}.other`)), 'released with the worker');
});

test("a worker blocked in exclusiveBlocking() wakes on the main thread's release, or ends on terminate()", { skip: blockingShows }, async (t) => {
  const file = path.join(makeWorkspace(t), 'tasks.jsonl');
  const lock = new FileLock(file);
  const reader = lock.tryShared();
  const { first } = startWorker(t, file, `const guard = new FileLock(file).exclusiveBlocking(); guard.release(); post(guard.mode);`);
  await waitUntilWaiting(process.pid, lock.lockPath, 'the worker blocks');
  reader.release();
  assert.equal(await first, 'exclusive');

  const writer = lock.tryExclusive();
  assert.notEqual(writer, null, 'the worker released before it said so');
  const stuck = startWorker(t, file, 'new FileLock(file).sharedBlocking(); post("never");');
  await waitUntilWaiting(process.pid, lock.lockPath, 'the worker blocks');
  assert.equal(await stuck.worker.terminate(), 1);
  writer.release();
});
