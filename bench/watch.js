'use strict';

// Row 5c: how long after a change in one process a LoopLock.watch() in
// another sees it. A holder process acquires and releases; a watcher process
// prints each state it sees. Both take CLOCK_MONOTONIC timestamps: the
// holder just before tryAcquire() and just before release(), the watcher as
// soon as the state reaches its loop body. Between changes the watcher is
// left idle for a random 1-2 park times, so its event loop is really asleep.
//
// Row 5d: what a watcher costs beside readers. While one holder holds,
// another process reads the lock file (open, read, close, as ralph's
// dashboard and `ralph loops list` do) every READ_GAP_MS; the watcher's own
// CPU time (process.cpuUsage) over the reads, divided by their number, is
// set beside one lone status() against a loop-lock holder (calls 25 ms
// apart, as a request handler makes them), in the reader process.
//
// Run as a child (`node bench/watch.js holder`, `... watcher` or `... reader`)
// it is one of those processes, speaking the line protocol of bench/proc.js:
//   holder:  acquire <workspace> -> acquired <ns before> <ns after>;  release -> released <ns>
//   watcher: watch <workspace>   -> watching, then state <locked> <pid|-> <ns> per state;
//            cpu -> cpu <user + system us>
//   reader:  status <workspace> <n> -> status <ns each, comma-separated>;
//            read <file> <n> -> read <n>

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Proc, payload } = require('./proc');
const { inRounds, summarize } = require('./stats');

const now = () => process.hrtime.bigint();

// Reads in row 5d, and the time between them: longer than any probing that
// follows one event (the watch's former burst lasted 127 ms).
const READS = 40;
const READ_GAP_MS = 150;
const STATUS_GAP_MS = 25;

function child(role) {
  const readline = require('node:readline');
  const { LoopLock } = require('..');
  const send = (line) => process.stdout.write(`${line}\n`);
  let guard = null;
  send('ready {}');
  const input = readline.createInterface({ input: process.stdin });
  // A live watch keeps the process alive: the end of input ends it.
  input.on('close', () => process.exit(0));
  input.on('line', async (line) => {
    const [command, workspace] = line.split(' ');
    if (role === 'holder' && command === 'acquire') {
      const start = now();
      guard = LoopLock.tryAcquire(workspace, 'bench watch');
      send(`acquired ${start} ${now()}`);
    } else if (role === 'holder' && command === 'release') {
      const start = now();
      guard.release();
      send(`released ${start}`);
    } else if (role === 'watcher' && command === 'cpu') {
      const { user, system } = process.cpuUsage();
      send(`cpu ${user + system}`);
    } else if (role === 'reader') {
      await read(command, workspace, Number(line.split(' ')[2]), send);
    } else if (role === 'watcher' && command === 'watch') {
      send('watching');
      for await (const { locked, holder } of LoopLock.watch(workspace)) {
        send(`state ${locked} ${holder?.pid ?? '-'} ${now()}`);
      }
    }
  });
}

/** The reader's commands: lone status() calls, or reads of the lock file, each after a pause. */
async function read(command, target, count, send) {
  const { LoopLock } = require('..');
  const samples = [];
  for (let i = 0; i < count; i++) {
    await sleep(command === 'status' ? STATUS_GAP_MS : READ_GAP_MS);
    const start = now();
    if (command === 'status') LoopLock.status(target);
    else fs.readFileSync(target);
    samples.push(Number(now() - start));
  }
  send(command === 'status' ? `status ${samples.join(',')}` : `read ${count}`);
}

/** Reads states until one matches; returns its timestamp. */
async function seen(watcher, locked, pid) {
  for (;;) {
    const [isLocked, holder, ns] = payload(await watcher.next(), 'state').split(' ');
    if (String(locked) === isLocked && (pid === undefined || String(pid) === holder)) return BigInt(ns);
  }
}

/**
 * The row's figures: 'release' (release() in the holder to the watcher
 * seeing the lock free) and 'acquisition' (tryAcquire() called in the holder
 * to the watcher seeing it held with the holder's record), and 'acquire
 * call', how long that tryAcquire() itself took in the holder.
 */
async function watchRow(workspace, config, log) {
  const holder = new Proc('watch holder', process.execPath, [__filename, 'holder']);
  const watcher = new Proc('watch watcher', process.execPath, [__filename, 'watcher']);
  const results = new Map();
  try {
    for (const proc of [holder, watcher]) {
      const ready = await proc.ready();
      if (!ready.ok) throw new Error(`${proc.label}: ${ready.reason}`);
    }
    payload(await watcher.request(`watch ${workspace}`), 'watching');
    await seen(watcher, false);
    const release = [];
    const acquisition = [];
    const acquireCall = [];
    const warmup = Math.min(5, config.handoffs);
    const park = () => sleep(config.parkMs * (1 + Math.random()));
    for (let i = 0; i < config.handoffs + warmup; i++) {
      if (i % 20 === 0) log(`watch: ${i}/${config.handoffs + warmup}`);
      await park();
      const [acquired, returned] = payload(await holder.request(`acquire ${workspace}`), 'acquired').split(' ').map(BigInt);
      const heldAt = await seen(watcher, true, holder.child.pid);
      await park();
      const released = BigInt(payload(await holder.request('release'), 'released'));
      const freeAt = await seen(watcher, false);
      if (i < warmup) continue;
      acquisition.push(Number(heldAt - acquired));
      acquireCall.push(Number(returned - acquired));
      release.push(Number(freeAt - released));
    }
    results.set('release', summarize(inRounds(release, 20)));
    results.set('acquisition', summarize(inRounds(acquisition, 20)));
    results.set('acquire call', summarize(inRounds(acquireCall, 20)));
  } finally {
    await Promise.all([holder.close(), watcher.close()]);
  }
  return results;
}

/** The watcher's CPU time so far, in microseconds, past any state lines it printed meanwhile. */
async function cpuOf(watcher) {
  watcher.child.stdin.write('cpu\n');
  for (;;) {
    const line = await watcher.next();
    if (line.startsWith('cpu ')) return Number(payload(line, 'cpu'));
  }
}

/**
 * Holds the lock in `workspace` by `hold` (returns a release function and
 * the holder's pid), and measures the watcher's CPU per reader open/close.
 */
async function watcherCpuPerRead(workspace, reader, hold) {
  const watcher = new Proc('reader watcher', process.execPath, [__filename, 'watcher']);
  const { pid, release } = await hold();
  try {
    const ready = await watcher.ready();
    if (!ready.ok) throw new Error(`watcher: ${ready.reason}`);
    payload(await watcher.request(`watch ${workspace}`), 'watching');
    await seen(watcher, true, pid);
    await sleep(200);
    const before = await cpuOf(watcher);
    payload(await reader.request(`read ${path.join(workspace, '.ralph', 'loop.lock')} ${READS}`), 'read');
    await sleep(READ_GAP_MS);
    const used = (await cpuOf(watcher)) - before;
    return { medianUs: used / READS, p99Us: used / READS, maxUs: used / READS, samples: READS, spreadPct: 0 };
  } finally {
    await watcher.close();
    await release();
  }
}

/** A loop-lock holder (marked) in a process of its own. */
async function loopLockHolder(workspace) {
  const holder = new Proc('reader holder', process.execPath, [__filename, 'holder']);
  const ready = await holder.ready();
  if (!ready.ok) throw new Error(`holder: ${ready.reason}`);
  payload(await holder.request(`acquire ${workspace}`), 'acquired');
  return { pid: holder.child.pid, release: () => holder.close() };
}

/**
 * An unmarked holder, as ralph's Rust loop is: flock(1), with a record
 * naming flock(1)'s own pid written by its command.
 */
async function unmarkedHolder(workspace) {
  const lockPath = path.join(workspace, '.ralph', 'loop.lock');
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  const script =
    'printf \'{\n  "pid": %s,\n  "started": "%s",\n  "prompt": "unmarked"\n}\' "$PPID" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$0"; echo held; read line';
  const child = spawn('flock', [lockPath, 'sh', '-c', script, lockPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', resolve);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { pid: child.pid, release: () => (child.stdin.end('\n'), exited) };
}

/**
 * Row 5d's figures: 'lone status' (one status() against a loop-lock holder,
 * STATUS_GAP_MS apart, in ns) and the watcher's CPU per reader open/close
 * beside a loop-lock holder and beside an unmarked holder ('readers,
 * loop-lock holder', 'readers, unmarked holder').
 */
async function readerRow(root, log) {
  const results = new Map();
  const reader = new Proc('reader', process.execPath, [__filename, 'reader']);
  try {
    const ready = await reader.ready();
    if (!ready.ok) throw new Error(`reader: ${ready.reason}`);
    const marked = path.join(root, 'marked');
    log('watch beside readers: lone status()');
    const holder = await loopLockHolder(marked);
    try {
      const samples = payload(await reader.request(`status ${marked} ${READS}`), 'status').split(',').map(Number);
      results.set('lone status', summarize(inRounds(samples, 20)));
    } finally {
      await holder.release();
    }
    log('watch beside readers: a loop-lock holder');
    results.set('readers, loop-lock holder', await watcherCpuPerRead(marked, reader, () => loopLockHolder(marked)));
    log('watch beside readers: an unmarked holder (flock(1) + record)');
    const unmarked = path.join(root, 'unmarked');
    try {
      results.set('readers, unmarked holder', await watcherCpuPerRead(unmarked, reader, () => unmarkedHolder(unmarked)));
    } catch (error) {
      log(`watch beside readers: no unmarked holder (${error.message})`);
    }
  } finally {
    await reader.close();
  }
  return results;
}

if (require.main === module) child(process.argv[2]);

module.exports = { readerRow, watchRow };
