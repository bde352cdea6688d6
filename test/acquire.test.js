const assert = require('node:assert/strict');
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { once } = require('node:events');
const { test } = require('node:test');
const { setTimeout: sleep } = require('node:timers/promises');
const { Worker } = require('node:worker_threads');
const { LoopLock } = require('../dist');

const fixture = (name) => path.join(__dirname, 'fixtures', name);
const { makeWorkspace, runtime, startChild, UNDER_WINE, until } = require('./helpers');
// Descriptor and thread counts come from Linux's /proc; without it (and
// under Wine, whose /proc is the Linux one of Wine's own process) the tests
// that compare them check the lock alone, and say so.
const hasProc = process.platform === 'linux';
const openFds = () => (hasProc ? fs.readdirSync('/proc/self/fd').length : 0);
const threads = () => (hasProc ? fs.readdirSync('/proc/self/task').length : 0);
function noteCounts(t) {
  if (!hasProc) t.diagnostic('no /proc here: descriptor and thread counts are not compared');
}

/**
 * Starts fixtures/holder.js holding the lock, and resolves once it holds
 * it. It releases after `releaseAfterMs` when given, or when sent 'release'.
 */
async function holder(t, ws, prompt, releaseAfterMs) {
  const child = startChild(t, 'holder.js', [JSON.stringify({ workspace: ws, prompt, mode: 'try', releaseAfterMs })]);
  await child.next('locked');
  return child;
}

/**
 * Starts and aborts a wait, so that what the first wait opens and keeps (the
 * addon's inotify descriptor; under Bun and Deno, fs.watch's) is open before
 * descriptors and threads are counted.
 */
async function warmUp(ws) {
  const holder = LoopLock.isLocked(ws) ? null : LoopLock.tryAcquire(ws, 'warm-up holder');
  const controller = new AbortController();
  const pending = LoopLock.acquire(ws, 'warm-up', { signal: controller.signal });
  controller.abort();
  await pending.then((guard) => guard.release()).catch(() => {});
  holder?.release();
  await fs.promises.readFile(__filename);
  await sleep(5);
}

test('a waiting acquire() gets the lock when a holder in another process releases it', async (t) => {
  const ws = makeWorkspace(t);
  // Released on request, not after a delay: under emulation (qemu) the
  // check below can take longer than any fixed hold.
  const child = await holder(t, ws, 'other process');
  assert.throws(() => LoopLock.tryAcquire(ws, 'me'), { code: 'ELOCKED' });
  const waiting = LoopLock.acquire(ws, 'waited');
  child.send('release');
  const guard = await waiting;
  assert.equal(guard.metadata.prompt, 'waited');
  assert.deepEqual(LoopLock.status(ws).holder?.prompt, 'waited');
  guard.release();
  await child.next('released');
});

test('a waiter writes its record, byte for byte, stamped when it took the lock', async (t) => {
  const ws = makeWorkspace(t);
  const child = await holder(t, ws, 'other process', 100);
  const waitStarted = Date.now();
  const guard = await LoopLock.acquire(ws, 'waited "quoted" é');
  const resolved = Date.now();
  try {
    const started = guard.metadata.started.getTime();
    assert.ok(started >= waitStarted + 50 && started <= resolved, `stamped at ${started}, between ${waitStarted} and ${resolved}`);
    assert.equal(
      fs.readFileSync(guard.lockPath, 'utf8'),
      `{\n  "pid": ${process.pid},\n  "started": "${guard.metadata.started.toISOString()}",\n  "prompt": "waited \\"quoted\\" é"\n}`,
    );
    assert.deepEqual(LoopLock.readExisting(ws), guard.metadata);
  } finally {
    guard.release();
  }
  await child.next('released');
});

test('a waiting acquire() gets the lock when its holder is SIGKILLed', async (t) => {
  const ws = makeWorkspace(t);
  const child = await holder(t, ws, 'doomed');
  const pending = LoopLock.acquire(ws, 'survivor');
  await sleep(50);
  child.child.kill('SIGKILL');
  const guard = await pending;
  assert.equal(LoopLock.readExisting(ws)?.prompt, 'survivor');
  guard.release();
});

test('acquire() resolves at once when the lock is free', async (t) => {
  const ws = makeWorkspace(t);
  const guard = await LoopLock.acquire(new URL(`file://${ws}`), 'free');
  assert.equal(guard.released, false);
  assert.equal(LoopLock.isLocked(ws), true);
  guard.release();
});

test('waiters are woken by util-linux flock(1), which closes without unlocking first', async (t) => {
  if (process.platform === 'win32') return t.skip('flock(1) is util-linux: there is none on Windows');
  const ws = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(ws, 'seed');
  const lockPath = guard.lockPath;
  guard.release();
  const peer = spawn('flock', ['-n', lockPath, '-c', 'echo held; sleep 0.3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(peer.stdout, 'data');
  const pending = LoopLock.acquire(ws, 'after flock(1)');
  const [code] = await once(peer, 'exit');
  assert.equal(code, 0);
  (await pending).release();
});

test('waiters are woken by a Python holder that unlocks but keeps the file open (backoff poll)', async (t) => {
  if (process.platform === 'win32') return t.skip("Python's fcntl.flock is POSIX-only");
  const ws = makeWorkspace(t);
  LoopLock.tryAcquire(ws, 'seed').release();
  const lockPath = path.join(ws, LoopLock.LOCK_FILE);
  const script = [
    'import fcntl, sys, time',
    'f = open(sys.argv[1], "r+")',
    'fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)',
    'print("held", flush=True)',
    'time.sleep(0.3)',
    'fcntl.flock(f, fcntl.LOCK_UN)',
    'print("unlocked", flush=True)',
    'time.sleep(5)',
  ].join('\n');
  const peer = spawn('python3', ['-c', script, lockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(peer.stdout, 'data');
  const guard = await LoopLock.acquire(ws, 'after python');
  assert.equal(LoopLock.isLocked(ws), true);
  guard.release();
  peer.kill();
});

test('a waiter moves to the new file when the lock file is deleted while it waits', async (t) => {
  if (process.platform === 'win32') {
    return t.skip("Windows keeps a deleted file's name until its last handle closes: .ralph cannot be removed while held");
  }
  const ws = makeWorkspace(t);
  const child = await holder(t, ws, 'holds the old inode');
  const pending = LoopLock.acquire(ws, 'new inode');
  await sleep(50);
  fs.rmSync(path.join(ws, '.ralph'), { recursive: true });
  const guard = await pending;
  assert.equal(guard.isIntact(), true);
  assert.equal(LoopLock.readExisting(ws)?.prompt, 'new inode');
  guard.release();
  child.child.kill('SIGKILL');
});

test('every one of many waiters in several processes and this one eventually gets the lock', async (t) => {
  const ws = makeWorkspace(t);
  const counter = path.join(ws, 'counter');
  fs.writeFileSync(counter, '0');
  const processes = 3;
  const rounds = 40;
  const children = Array.from({ length: processes }, () =>
    spawn(process.execPath, [fixture('count.js'), ws, counter, String(rounds)], { stdio: 'inherit' }),
  );
  const local = Array.from({ length: 100 }, async (_, i) => {
    const guard = await LoopLock.acquire(ws, `local ${i}`);
    const value = Number(fs.readFileSync(counter, 'utf8'));
    await sleep(0);
    fs.writeFileSync(counter, String(value + 1));
    guard.release();
  });
  await Promise.all(local);
  for (const child of children) {
    const [code] = child.exitCode === null ? await once(child, 'exit') : [child.exitCode];
    assert.equal(code, 0);
  }
  assert.equal(Number(fs.readFileSync(counter, 'utf8')), processes * rounds + 100, 'no increment lost');
});

test('with 64 pending acquire() calls, fs.promises.readFile still completes', async (t) => {
  const ws = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(ws, 'holder');
  const waits = Array.from({ length: 64 }, (_, i) => LoopLock.acquire(ws, `waiter ${i}`));
  // The libuv threadpool has 4 threads: a waiter parked on one would starve
  // this read until the lock is released, which comes only after it.
  const result = await Promise.race([fs.promises.readFile(__filename, 'utf8'), sleep(5000, 'starved')]);
  assert.notEqual(result, 'starved', 'readFile must not wait for the lock');
  guard.release();
  for (const wait of waits) {
    // Each waiter releases as soon as it is resolved, so the rest can go on.
    wait.then((g) => g.release());
  }
  await Promise.all(waits);
});

test('an already-aborted signal rejects with its reason at once, touching nothing', async (t) => {
  const ws = makeWorkspace(t);
  const reason = new Error('stop before starting');
  await assert.rejects(LoopLock.acquire(ws, 'never', { signal: AbortSignal.abort(reason) }), (error) => {
    assert.equal(error, reason);
    return true;
  });
  assert.equal(fs.existsSync(path.join(ws, '.ralph')), false);
});

test('aborting a pending wait rejects with signal.reason and leaves no descriptor, thread or lock', async (t) => {
  const ws = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(ws, 'holder');
  await warmUp(ws);
  noteCounts(t);
  const fdsBefore = openFds();
  const threadsBefore = threads();
  for (let i = 0; i < 2000; i++) {
    const controller = new AbortController();
    const pending = LoopLock.acquire(ws, 'aborted', { signal: controller.signal });
    if (i % 2 === 0) setImmediate(() => controller.abort(new Error(`abort ${i}`)));
    else controller.abort(new Error(`abort ${i}`));
    await assert.rejects(pending, { message: `abort ${i}` });
  }
  await sleep(5);
  assert.equal(openFds(), fdsBefore, 'no descriptor left open');
  // At most as many: Deno's own blocking pool lets idle threads end meanwhile.
  assert.ok(threads() <= threadsBefore, `no thread left running: ${threadsBefore} before, ${threads()} after`);
  guard.release();
  assert.equal(LoopLock.isLocked(ws), false, 'no lock left held');
});

test('AbortSignal.timeout() bounds the wait', async (t) => {
  const ws = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(ws, 'holder');
  await assert.rejects(LoopLock.acquire(ws, 'impatient', { signal: AbortSignal.timeout(50) }), {
    name: 'TimeoutError',
  });
  guard.release();
});

test('aborts racing the release never leave a lock behind', async (t) => {
  const ws = makeWorkspace(t);
  await warmUp(ws);
  noteCounts(t);
  const fdsBefore = openFds();
  let acquired = 0;
  for (let i = 0; i < 300; i++) {
    const guard = LoopLock.tryAcquire(ws, 'holder');
    const controller = new AbortController();
    const pending = LoopLock.acquire(ws, 'racer', { signal: controller.signal });
    // Release and abort in the same turn, in both orders: the wait either
    // won (and the caller holds a guard) or rejected (and holds nothing).
    if (i % 2 === 0) {
      guard.release();
      setImmediate(() => controller.abort());
    } else {
      setImmediate(() => {
        controller.abort();
        guard.release();
      });
    }
    try {
      (await pending).release();
      acquired++;
    } catch (error) {
      assert.equal(error.name, 'AbortError');
    }
    assert.equal(LoopLock.isLocked(ws), false, `iteration ${i} left the lock held`);
  }
  await sleep(5);
  assert.equal(openFds(), fdsBefore);
  assert.ok(acquired > 0, 'the release-first order lets the wait win at least sometimes');
});

test('a pending wait keeps the process alive until it gets the lock', async (t) => {
  const ws = makeWorkspace(t);
  const child = await holder(t, ws, 'holder', 300);
  const source = `require(${JSON.stringify(require.resolve('../dist'))}).LoopLock.acquire(${JSON.stringify(ws)}, 'kept alive').then((g) => { process.stdout.write(g.metadata.prompt); g.release(); })`;
  const output = execFileSync(process.execPath, ['-e', source], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(output, 'kept alive');
  await child.next('released');
});

test('process.exit() with pending waits exits promptly and leaves no lock held', async (t) => {
  const ws = makeWorkspace(t);
  const child = await holder(t, ws, 'holder');
  const waiter = spawn(process.execPath, [fixture('exit-while-waiting.js'), ws, 'exit'], { stdio: 'inherit' });
  const [code] = await once(waiter, 'exit');
  assert.equal(code, 3);
  child.child.kill('SIGKILL');
  await child.exited;
  assert.equal(LoopLock.isLocked(ws), false);
});

test('terminating workers with pending waits neither crashes nor leaks', async (t) => {
  const ws = makeWorkspace(t);
  const child = await holder(t, ws, 'holder');
  const output = execFileSync(process.execPath, [fixture('exit-while-waiting.js'), ws, 'worker'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(output, 'done\n');
  child.child.kill('SIGKILL');
  await child.exited;
  assert.equal(LoopLock.isLocked(ws), false);
});

for (const [how, what] of [
  ['terminate', 'its worker is terminated'],
  ['exit', 'an earlier callback of the same inotify batch called process.exit() in its worker'],
]) {
  test(`a wait whose claim fails while ${what} never aborts the process (30 rounds)`, (t) => {
    if (how === 'exit' && UNDER_WINE) {
      return t.skip("the rounds go through a directory symlink, and Wine's symlinks are not Windows'");
    }
    const run = spawnSync(process.execPath, [fixture('terminate-during-claim.js'), makeWorkspace(t), how, '30'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(run.signal, null, run.stderr);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'survived 30\n');
  });
}

/**
 * Runs `source` in a child that holds the lock, waits for it with
 * acquire() and releases it, so that the wait resolves from the event
 * loop; `then` is the source of the continuation given the guard.
 */
function afterWait(t, then, prelude = '') {
  const ws = makeWorkspace(t);
  const source = `${prelude}
    const { LoopLock } = require(${JSON.stringify(require.resolve('../dist'))});
    const holder = LoopLock.tryAcquire(${JSON.stringify(ws)}, 'holder');
    LoopLock.acquire(${JSON.stringify(ws)}, 'waiter').then((guard) => { guard.release(); ${then} });
    setTimeout(() => holder.release(), 20);`;
  return spawnSync(process.execPath, ['-e', source], { encoding: 'utf8', timeout: 10_000 });
}

test('an exception thrown by a tick queued after acquire() resolves is uncaught: exit code 1 and its message', (t) => {
  const run = afterWait(t, "process.nextTick(() => { throw new Error('thrown from a tick'); });");
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /thrown from a tick/);
});

test("an exception thrown by a tick queued after acquire() resolves reaches 'uncaughtException'", (t) => {
  const run = afterWait(
    t,
    "process.nextTick(() => { throw new Error('thrown from a tick'); });",
    "process.on('uncaughtException', (error) => { process.stdout.write(error.message); process.exitCode = 4; });",
  );
  assert.equal(run.stdout, 'thrown from a tick');
  assert.equal(run.status, 4, run.stderr);
});

test('a worker waits on its own event loop and gets the lock the main thread releases', async (t) => {
  const ws = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(ws, 'main thread');
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const { LoopLock } = require(${JSON.stringify(require.resolve('../dist'))});
     // Kept alive until terminated: a worker whose loop empties exits and frees its locks.
     setInterval(() => {}, 1 << 30);
     LoopLock.acquire(${JSON.stringify(ws)}, 'worker').then((g) => { globalThis.guard = g; parentPort.postMessage(g.metadata.prompt); });`,
    { eval: true },
  );
  await sleep(100);
  guard.release();
  const [message] = await once(worker, 'message');
  assert.equal(message, 'worker');
  assert.equal(LoopLock.isLocked(ws), true, 'the worker holds it');
  await worker.terminate();
  if (runtime === 'deno') {
    // Deno tears a terminated worker's Node-API environment down (closing
    // what it held) after terminate() has resolved.
    await until(() => !LoopLock.isLocked(ws), 'the worker exit released it');
  } else {
    assert.equal(LoopLock.isLocked(ws), false, 'released by the worker exit');
  }
});

test('bad arguments reject with a TypeError', async (t) => {
  await assert.rejects(LoopLock.acquire(42, 'x'), TypeError);
  await assert.rejects(LoopLock.acquire(makeWorkspace(t), 42), TypeError);
  await assert.rejects(LoopLock.acquire(makeWorkspace(t), 'x', { signal: 'nope' }), TypeError);
});
