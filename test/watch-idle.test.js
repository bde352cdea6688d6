'use strict';
// What a watch costs while nothing changes: a reader opening and closing
// the lock file while the same holder holds costs one flock() and one check
// of that holder, and no read; and a watch with persistent: false lets its
// process exit, as fs.watch does, inotify or poll.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { native } = require('../dist/native.js');
const { lockPathIn, makeWorkspace, startChild } = require('./helpers');

const NO_INOTIFY =
  process.platform !== 'linux' || native().watchPaths === undefined
    ? 'no inotify watcher here (Windows, macOS, Bun, Deno): watch() polls, which readers do not wake'
    : false;

/** Starts the holder fixture on `workspace`; resolves once it holds. */
async function startHolder(t, workspace, prompt) {
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt, mode: 'try' })]);
  await holder.next('locked');
  return holder;
}

/** Reads a child's states until one satisfies `predicate`. */
async function stateWhere(child, predicate) {
  for (;;) {
    const state = await child.next('state');
    if (predicate(state)) return state;
  }
}

test('readers opening and closing the file while one holder holds: one flock() and one holder check each, no read, no new state', {
  skip: NO_INOTIFY,
}, async (t) => {
  const workspace = makeWorkspace(t);
  const holder = await startHolder(t, workspace, 'held while read');
  const watcher = startChild(t, 'watch-count.js', [workspace]);
  await stateWhere(watcher, (state) => state.pid === holder.pid);
  watcher.child.stdin.write('reset\n');
  await watcher.next('reset');

  const READERS = 30;
  for (let i = 0; i < READERS; i++) {
    fs.closeSync(fs.openSync(lockPathIn(workspace), 'r'));
    // Each close handled on its own, not coalesced with the next.
    await watcher.next('closed');
  }
  holder.send('release');
  const free = await watcher.next('state');
  assert.deepEqual(free, { event: 'state', locked: false, pid: null }, 'no state between the holder and its release');
  watcher.child.stdin.write('count\n');
  const counts = await watcher.next('count');
  const closes = READERS + 1;
  assert.equal(counts.read, 0, `the record is never read again (${JSON.stringify(counts)})`);
  assert.equal(counts.open + counts.identity, 0, `nothing is reopened (${JSON.stringify(counts)})`);
  assert.ok(counts.heldBy <= closes, `at most one holder check per close (${JSON.stringify(counts)})`);
  assert.ok(counts.tryLock <= 2 * closes, `at most two flock() per close (${JSON.stringify(counts)})`);
});

/** Starts the watch-persistent fixture; resolves once its watch yielded the first state. */
async function startWatcher(t, workspace, persistent, how) {
  const watcher = startChild(t, 'watch-persistent.js', [workspace, persistent, how]);
  await watcher.next('ready');
  return watcher;
}

for (const how of ['inotify', 'poll']) {
  test(`persistent: false lets the process exit while its watch is live; by default the watch keeps it alive (${how})`, {
    skip: how === 'inotify' && NO_INOTIFY,
  }, async (t) => {
    const workspace = makeWorkspace(t);
    const loose = await startWatcher(t, workspace, 'false', how);
    await loose.next('idle');
    assert.deepEqual(await loose.exited, { code: 0, signal: null });

    for (const persistent of ['default', 'true']) {
      const kept = await startWatcher(t, workspace, persistent, how);
      // Alive after the caller's last line ran: it sees a change made now.
      const guard = LoopLock.tryAcquire(workspace, `seen by a ${persistent} watch`);
      await stateWhere(kept, (state) => state.locked && state.pid === process.pid);
      guard.release();
      await stateWhere(kept, (state) => !state.locked);
      kept.child.kill();
      await kept.exited;
      assert.equal(kept.stderr(), '');
    }
  });
}

test('persistent must be a boolean', () => {
  assert.throws(() => LoopLock.watch('.', { persistent: 'no' }), {
    name: 'TypeError',
    message: /options\.persistent.*boolean/,
  });
  assert.throws(() => LoopLock.watch('.', { persistent: 1 }), TypeError);
});
