'use strict';

// Row 5c: how long after a change in one process a LoopLock.watch() in
// another sees it. A holder process acquires and releases; a watcher process
// prints each state it sees. Both take CLOCK_MONOTONIC timestamps: the
// holder just before tryAcquire() and just before release(), the watcher as
// soon as the state reaches its loop body. Between changes the watcher is
// left idle for a random 1-2 park times, so its event loop is really asleep.
//
// Run as a child (`node bench/watch.js holder` or `... watcher`) it is one of
// those processes, speaking the line protocol of bench/proc.js:
//   holder:  acquire <workspace> -> acquired <ns before> <ns after>;  release -> released <ns>
//   watcher: watch <workspace>   -> watching, then state <locked> <pid|-> <ns> per state

const { setTimeout: sleep } = require('node:timers/promises');
const { Proc, payload } = require('./proc');
const { inRounds, summarize } = require('./stats');

const now = () => process.hrtime.bigint();

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
    } else if (role === 'watcher' && command === 'watch') {
      send('watching');
      for await (const { locked, holder } of LoopLock.watch(workspace)) {
        send(`state ${locked} ${holder?.pid ?? '-'} ${now()}`);
      }
    }
  });
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

if (require.main === module) child(process.argv[2]);

module.exports = { watchRow };
