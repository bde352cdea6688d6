'use strict';

// One contender in its own process, driven by bench/index.js over
// stdin/stdout with the same line protocol as floor.c: each contender gets
// a fresh heap and event loop, and a holder or waiter is another process.
//
//   <op> <lockPath> <count>   -> samples <ns> <ns> ...   (op: uncontended, contended,
//                                isLockedFree, isLockedHeld, statusHeld)
//   hold <lockPath>           -> held
//   release                   -> released <monotonic ns just before releasing>
//   wait <lockPath>           -> waiting, later acquired <monotonic ns>
//   abort <lockPath> <count> <parkMs> -> aborts <json>
//   memory <lockPath> <count> -> memory <json>

const fs = require('node:fs');
const readline = require('node:readline');
const { setTimeout: sleep } = require('node:timers/promises');
const { contenders } = require('./contenders');

const name = process.argv[2];

function send(line) {
  // Writes to a pipe are synchronous on Linux, so nothing is left buffered.
  process.stdout.write(`${line}\n`);
}

let ops;
try {
  ops = contenders[name]();
} catch (error) {
  send(`unavailable ${String(error.message).split('\n')[0]}`);
  process.exit(0);
}

const now = () => process.hrtime.bigint();

// Each timed operation's result, checked once per batch, so a contender that
// silently does the wrong thing cannot post a good time.
const expectations = {
  uncontended: { op: 'uncontended', check: () => true },
  contended: { op: 'contended', check: (holder) => holder !== null && typeof holder.pid === 'number' },
  isLockedFree: { op: 'isLocked', check: (locked) => locked === false },
  isLockedHeld: { op: 'isLocked', check: (locked) => locked === true },
  statusHeld: { op: 'status', check: (holder) => holder !== null && typeof holder.pid === 'number' },
};

async function batch(command, lockPath, count) {
  const { op: opName, check } = expectations[command];
  const op = ops[opName];
  const first = await op(lockPath);
  if (!check(first)) throw new Error(`${name} ${command}: unexpected result ${JSON.stringify(first)}`);
  const samples = new Array(count);
  if (ops.async) {
    for (let i = 0; i < count; i++) {
      const start = now();
      await op(lockPath);
      samples[i] = Number(now() - start);
    }
  } else {
    for (let i = 0; i < count; i++) {
      const start = now();
      op(lockPath);
      samples[i] = Number(now() - start);
    }
  }
  return `samples ${samples.join(' ')}`;
}

const MEMORY_CHUNK = 10_000;
const MEMORY_CHECKPOINTS = 10;

const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

function settleMemory() {
  if (typeof global.gc === 'function') {
    global.gc();
    global.gc();
  }
}

async function cycles(lockPath, count) {
  const cycle = ops.uncontended;
  // Chunks with a turn of the event loop between them, as in a long-lived
  // host: finalizers and promise jobs get to run, as they would there.
  for (let done = 0; done < count; done += MEMORY_CHUNK) {
    const chunk = Math.min(MEMORY_CHUNK, count - done);
    if (ops.async) {
      for (let i = 0; i < chunk; i++) await cycle(lockPath);
    } else {
      for (let i = 0; i < chunk; i++) cycle(lockPath);
    }
    await new Promise(setImmediate);
  }
  // Let finalizers and pending callbacks run before measuring.
  await sleep(10);
  settleMemory();
}

/**
 * RSS and descriptors around `count` row-1 cycles, with RSS read (after a
 * full GC) at each tenth of the run. The warm-up (a fifth as many cycles)
 * lets V8 and malloc reach their working size first, which says nothing
 * about leaks (the young generation is held at 1 MB: see memoryRow).
 */
async function memory(lockPath, count) {
  await cycles(lockPath, Math.max(1000, Math.round(count / 5)));
  const rssKiB = () => Math.round(process.memoryUsage.rss() / 1024);
  const checkpoints = [rssKiB()];
  const fdsBefore = openDescriptors();
  const start = now();
  for (let part = 0; part < MEMORY_CHECKPOINTS; part++) {
    const from = Math.floor((count * part) / MEMORY_CHECKPOINTS);
    await cycles(lockPath, Math.floor((count * (part + 1)) / MEMORY_CHECKPOINTS) - from);
    checkpoints.push(rssKiB());
  }
  return {
    rssCheckpointsKiB: checkpoints,
    fdsBefore,
    fdsAfter: openDescriptors(),
    seconds: Number(now() - start) / 1e9,
    gc: typeof global.gc === 'function',
  };
}

// What any abortable wait costs in Node: a promise that the signal's
// 'abort' listener rejects. AbortController and its DOMException alone take
// a good part of the abort row, which this line shows.
const bareWait = (lockPath, signal) =>
  new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));

/** Time from abort() to the rejection reaching the awaiting code, in ns. */
async function abortOnce(start, lockPath, parkMs) {
  const controller = new AbortController();
  const pending = start(lockPath, controller.signal);
  await sleep(parkMs);
  const begin = now();
  controller.abort();
  const outcome = await pending.then(
    () => 'resolved',
    (error) => (error === controller.signal.reason ? 'reason' : 'other'),
  );
  const ns = Number(now() - begin);
  if (outcome === 'resolved') throw new Error(`${name}: an aborted wait resolved while the lock was held`);
  return { ns, wrongReason: outcome !== 'reason' };
}

/** Aborts of pending waits, alternating with the bare AbortSignal baseline. */
async function aborts(lockPath, count, parkMs) {
  // One untimed abort first: what a thread keeps between waits (loop-lock's
  // shared inotify descriptor, closed a second after the last wait) is then
  // in both counts, and only what each wait leaves behind shows.
  await abortOnce(ops.abort, lockPath, parkMs);
  const fdsBefore = openDescriptors();
  const samples = [];
  const baseline = [];
  let wrongReason = 0;
  for (let i = 0; i < count; i++) {
    const aborted = await abortOnce(ops.abort, lockPath, parkMs);
    samples.push(aborted.ns);
    if (aborted.wrongReason) wrongReason++;
    baseline.push((await abortOnce(bareWait, lockPath, parkMs)).ns);
  }
  await sleep(50);
  return { samples, baseline, wrongReason, fdsBefore, fdsAfter: openDescriptors() };
}

async function handle(line) {
  const [command, lockPath, count, extra] = line.split(' ');
  if (command in expectations) return batch(command, lockPath, Number(count));
  switch (command) {
    case 'hold':
      await ops.hold(lockPath);
      return 'held';
    case 'release':
      return `released ${await ops.release()}`;
    case 'wait': {
      const acquired = ops.wait(lockPath);
      send('waiting');
      return `acquired ${await acquired}`;
    }
    case 'abort':
      return `aborts ${JSON.stringify(await aborts(lockPath, Number(count), Number(extra)))}`;
    case 'memory':
      return `memory ${JSON.stringify(await memory(lockPath, Number(count)))}`;
    default:
      throw new Error(`unknown command ${command}`);
  }
}

let queue = Promise.resolve();
readline
  .createInterface({ input: process.stdin })
  .on('line', (line) => {
    queue = queue.then(async () => {
      try {
        send(await handle(line));
      } catch (error) {
        send(`error ${String(error.stack ?? error).replace(/\n/g, ' | ')}`);
      }
    });
  })
  // The bench is done with us (or gone): exit even though a peer's timer,
  // such as proper-lockfile's mtime refresh, would keep the loop alive.
  .on('close', () => queue.then(() => process.exit(0)));

send(
  `ready ${JSON.stringify({
    pid: process.pid,
    note: ops.note,
    waitNote: ops.waitNote ?? null,
    waitMissing: ops.wait ? null : (ops.waitMissing ?? 'no wait'),
    abortMissing: ops.abort ? null : (ops.abortMissing ?? 'no abort'),
  })}`,
);
