'use strict';
// LoopLock.watch(): the current state, then one per change made by other
// processes (loop-lock, flock(1), a Rust peer), through removal and moves
// of the workspace; one inotify descriptor for many watches, nothing left
// once a watch ends, no CPU while idle, workers and abort.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { Worker } = require('node:worker_threads');
const { LoopLock } = require('../dist');
const { native } = require('../dist/native.js');
const { FIXTURES, lockPathIn, makeWorkspace, startChild, UNDER_WINE, until } = require('./helpers');
const { buildPeer, missingToolchain, startPeer } = require('./rust-peer-tool');

const FREE = { locked: false, holder: null };
const WINDOWS = process.platform === 'win32';
// Where the addon watches with inotify; elsewhere (Windows, macOS, Bun,
// Deno) watch() polls.
const NO_INOTIFY =
  process.platform !== 'linux' || native().watchPaths === undefined
    ? 'no inotify watcher here (Windows, Bun, Deno): watch() polls'
    : false;
// Windows keeps a file's name while it is open, and its directories' names.
const HELD_FILES_STAY = WINDOWS ? 'Windows neither removes, replaces nor moves a file that is open' : false;

/** The next state, or a failure naming `what` after `ms`. */
async function nextState(states, what, ms = 5000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no state within ${ms} ms: ${what}`)), ms);
  });
  try {
    const { value, done } = await Promise.race([states.next(), timeout]);
    assert.equal(done, false, `the watch ended while waiting for ${what}`);
    return value;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads states until one satisfies `predicate`; returns every state read,
 * and checks that no two in a row are the same.
 */
async function until_(states, predicate, what, seen = []) {
  for (;;) {
    const state = await nextState(states, what);
    if (seen.length > 0) assert.notDeepEqual(state, seen.at(-1), 'the same state twice in a row');
    seen.push(state);
    if (predicate(state)) return seen;
  }
}

const heldBy = (pid) => (state) => state.locked && state.holder?.pid === pid;
const isFree = (state) => !state.locked;

/** What this process has open, by kind: inotify descriptors and lock files. */
function descriptors() {
  const links = fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
  return {
    inotify: links.filter((link) => link === 'anon_inode:inotify').length,
    lockFiles: links.filter((link) => link.endsWith('loop.lock')).length,
    total: links.length,
  };
}

/** Starts the holder fixture on `workspace`; resolves once it holds. */
async function startHolder(t, workspace, prompt) {
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt, mode: 'try' })]);
  await holder.next('locked');
  return holder;
}

test('yields the current state at once: free, then held by this process', async (t) => {
  const workspace = makeWorkspace(t);
  const free = LoopLock.watch(workspace);
  assert.deepEqual(await nextState(free, 'the first state', 1000), FREE);
  await free.return();

  const guard = LoopLock.tryAcquire(workspace, 'held here');
  t.after(() => guard.release());
  const held = LoopLock.watch(workspace);
  assert.deepEqual(await nextState(held, 'the first state', 1000), { locked: true, holder: guard.metadata });
  assert.deepEqual(await held.return(), { value: undefined, done: true });
  assert.deepEqual(await held.next(), { value: undefined, done: true });
});

test('another process acquiring, releasing, then being SIGKILLed: each change, with its holder', async (t) => {
  const workspace = makeWorkspace(t);
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  assert.deepEqual(await nextState(states, 'the first state'), FREE);

  const first = await startHolder(t, workspace, 'first holder');
  const [seen] = (await until_(states, heldBy(first.pid), 'the holder')).slice(-1);
  assert.equal(seen.holder.prompt, 'first holder');
  first.send('release');
  await until_(states, isFree, 'the release');

  const second = await startHolder(t, workspace, 'second holder');
  await until_(states, heldBy(second.pid), 'the second holder');
  second.child.kill('SIGKILL');
  await until_(states, isFree, 'the SIGKILL');
  assert.deepEqual(LoopLock.status(workspace), FREE);
});

test('a holder that exits without releasing is seen to free the lock', async (t) => {
  const workspace = makeWorkspace(t);
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  await nextState(states, 'the first state');
  const holder = await startHolder(t, workspace, 'exits');
  await until_(states, heldBy(holder.pid), 'the holder');
  holder.send('exit');
  await until_(states, isFree, 'the exit');
});

test('util-linux flock(1), which writes no record and closes before it unlocks: held, then free', {
  skip: WINDOWS && 'flock(1) is util-linux: there is none on Windows',
}, async (t) => {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  assert.deepEqual(await nextState(states, 'the first state'), FREE);

  const peer = spawn('flock', [lockPathIn(workspace), '-c', 'echo held; read line'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => peer.kill('SIGKILL'));
  await new Promise((resolve) => peer.stdout.once('data', resolve));
  const held = await nextState(states, 'the flock(1) holder');
  assert.equal(held.locked, true);
  // The holder is whatever status() says (the rule of who holds it is status()'s).
  assert.deepEqual(held, LoopLock.status(workspace));
  peer.stdin.end('\n');
  await until_(states, isFree, 'the flock(1) release');
});

test('a Rust peer holding (the reference\'s record and flock), then releasing', {
  skip: WINDOWS ? 'the Rust peer is built for Linux' : missingToolchain(),
}, async (t) => {
  buildPeer();
  const workspace = makeWorkspace(t);
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  assert.deepEqual(await nextState(states, 'the first state'), FREE);
  const peer = startPeer(t);
  await peer.ask('held', 'hold', lockPathIn(workspace), 'rust holds');
  const [held] = (await until_(states, heldBy(peer.pid), 'the Rust holder')).slice(-1);
  assert.equal(held.holder.prompt, 'rust holds');
  await peer.ask('released', 'release');
  await until_(states, isFree, 'the Rust release');
});

test('rm -rf .ralph while held and watched: free, then the next holder of the new file', { skip: HELD_FILES_STAY }, async (t) => {
  const workspace = makeWorkspace(t);
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  await nextState(states, 'the first state');
  const first = await startHolder(t, workspace, 'on the old file');
  await until_(states, heldBy(first.pid), 'the holder');

  fs.rmSync(path.join(workspace, '.ralph'), { recursive: true });
  await until_(states, isFree, 'the removal');
  const second = await startHolder(t, workspace, 'on the new file');
  await until_(states, heldBy(second.pid), 'the holder of the new file');
  fs.rmSync(path.join(workspace, '.ralph'), { recursive: true });
  await until_(states, isFree, 'the second removal');
});

test('the lock file replaced by a rename while watched: the new file is the one watched', { skip: HELD_FILES_STAY }, async (t) => {
  const workspace = makeWorkspace(t);
  const holder = await startHolder(t, workspace, 'on the replaced file');
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  assert.ok(heldBy(holder.pid)(await nextState(states, 'the first state')));

  const fresh = path.join(workspace, '.ralph', 'fresh');
  fs.writeFileSync(fresh, '');
  fs.renameSync(fresh, lockPathIn(workspace));
  await until_(states, isFree, 'the replacement');
  const next = await startHolder(t, workspace, 'on the new file');
  await until_(states, heldBy(next.pid), 'the holder of the new file');
});

test('mv of the workspace while watched follows the path: free while moved away, held once back', { skip: HELD_FILES_STAY }, async (t) => {
  const parent = makeWorkspace(t);
  const workspace = path.join(parent, 'ws');
  const moved = path.join(parent, 'moved');
  fs.mkdirSync(workspace);
  const holder = await startHolder(t, workspace, 'moved around');
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  assert.ok(heldBy(holder.pid)(await nextState(states, 'the first state')));

  fs.renameSync(workspace, moved);
  await until_(states, isFree, 'the move away');
  fs.renameSync(moved, workspace);
  await until_(states, heldBy(holder.pid), 'the move back');

  // A workspace that does not exist yet is watched from the nearest directory that does.
  fs.renameSync(workspace, moved);
  await until_(states, isFree, 'the second move away');
  const other = await startHolder(t, workspace, 'a new workspace at the path');
  await until_(states, heldBy(other.pid), 'the new workspace');
});

test('a directory made on the path between the watcher listing it and watching it is followed', { skip: NO_INOTIFY }, async (t) => {
  const workspace = path.join(makeWorkspace(t), 'ws');
  const ralph = path.join(workspace, '.ralph');
  // The race, made certain: .ralph appears just after the watcher found it
  // missing, before it watches the workspace for it.
  const { lstatSync } = fs;
  let madeLate = false;
  fs.lstatSync = function statThenMake(file, ...rest) {
    try {
      return lstatSync.call(this, file, ...rest);
    } finally {
      if (file === ralph && !madeLate && fs.existsSync(workspace)) {
        fs.mkdirSync(ralph);
        madeLate = true;
      }
    }
  };
  t.after(() => {
    fs.lstatSync = lstatSync;
  });
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  assert.deepEqual(await nextState(states, 'the first state'), FREE);
  fs.mkdirSync(workspace);
  const holder = await startHolder(t, workspace, 'behind a late directory');
  await until_(states, heldBy(holder.pid), 'the holder');
  assert.ok(madeLate, 'the watcher walks the path with fs.lstatSync');
});

test('bursts are coalesced: the last state is the current one, never one state twice in a row', async (t) => {
  const workspace = makeWorkspace(t);
  const states = LoopLock.watch(workspace);
  t.after(() => states.return());
  const seen = [await nextState(states, 'the first state')];
  // Twenty cycles in another process, while this one is not reading.
  const churn = spawnSync(
    process.execPath,
    ['-e', `const { LoopLock } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
      for (let i = 0; i < 20; i++) LoopLock.tryAcquire(process.argv[1], 'cycle ' + i).release();`, workspace],
    { encoding: 'utf8' },
  );
  assert.equal(churn.status, 0, churn.stderr);
  const holder = await startHolder(t, workspace, 'the last one');
  await until_(states, heldBy(holder.pid), 'the last holder', seen);
  assert.ok(seen.length <= 42, `at most one state per change (${seen.length})`);
});

test('1,000 watches in one process share one inotify descriptor and one lock file descriptor, and all see a change', { skip: NO_INOTIFY }, async (t) => {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  fs.writeFileSync(lockPathIn(workspace), '');
  await new Promise((resolve) => setTimeout(resolve, 1200)); // other tests' inotify descriptors linger 1 s
  const before = descriptors();
  const watches = Array.from({ length: 1000 }, () => LoopLock.watch(workspace));
  t.after(() => Promise.all(watches.map((w) => w.return())));
  for (const states of watches) assert.deepEqual(await nextState(states, 'the first state'), FREE);
  const during = descriptors();
  assert.equal(during.inotify - before.inotify, 1, 'one inotify descriptor');
  assert.equal(during.lockFiles - before.lockFiles, 1, 'one descriptor on the lock file');
  assert.equal(during.total - before.total, 2);

  const holder = await startHolder(t, workspace, 'seen by all');
  for (const states of watches) await until_(states, heldBy(holder.pid), 'the holder');
});

test('ending a watch (break, return(), abort) leaves no descriptor once the inotify descriptor has idled out', {
  skip: process.platform !== 'linux' && 'it counts descriptors in /proc/self/fd',
}, async (t) => {
  const workspace = makeWorkspace(t);
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const before = descriptors();
  for await (const state of LoopLock.watch(workspace)) {
    assert.deepEqual(state, FREE);
    break;
  }
  const ended = LoopLock.watch(workspace);
  await ended.next();
  await ended.return();
  const controller = new AbortController();
  const aborted = LoopLock.watch(workspace, { signal: controller.signal });
  await aborted.next();
  controller.abort();
  await assert.rejects(aborted.next(), { name: 'AbortError' });
  assert.equal(descriptors().lockFiles, before.lockFiles, 'the lock file descriptor closes at once');
  await until(() => descriptors().total === before.total, 'the inotify descriptor is closed');
  assert.deepEqual(descriptors(), before);
});

test('abort rejects the pending next() with an AbortError whose cause is signal.reason, like fs.promises.watch; then done', async (t) => {
  const workspace = makeWorkspace(t);
  const controller = new AbortController();
  const states = LoopLock.watch(workspace, { signal: controller.signal });
  await nextState(states, 'the first state');
  const pending = states.next();
  const reason = new Error('dashboard closed');
  controller.abort(reason);
  await assert.rejects(pending, (error) => {
    assert.equal(error.name, 'AbortError');
    assert.equal(error.code, 'ABORT_ERR');
    assert.equal(error.cause, reason);
    return true;
  });
  assert.deepEqual(await states.next(), { value: undefined, done: true });

  const early = new AbortController();
  early.abort(reason);
  const never = LoopLock.watch(workspace, { signal: early.signal });
  await assert.rejects(never.next(), (error) => error.name === 'AbortError' && error.cause === reason);
  assert.deepEqual(await never.next(), { value: undefined, done: true });

  const later = new AbortController();
  const unread = LoopLock.watch(workspace, { signal: later.signal });
  await unread.next();
  later.abort(reason);
  await assert.rejects(unread.next(), (error) => error.name === 'AbortError' && error.cause === reason);
});

test('bad arguments are TypeErrors at the call', () => {
  assert.throws(() => LoopLock.watch(42), TypeError);
  assert.throws(() => LoopLock.watch('.', { signal: 'no' }), TypeError);
});

test('a symlink at the lock path ends the watch with ELOOP from next()', {
  skip: UNDER_WINE && 'Wine shows a symlink as the file it points to, not as a reparse point',
}, async (t) => {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  fs.symlinkSync('/etc/hostname', lockPathIn(workspace));
  const states = LoopLock.watch(workspace);
  await assert.rejects(states.next(), { code: 'ELOOP' });
  assert.deepEqual(await states.next(), { value: undefined, done: true });
});

/**
 * Reads a child's or worker's states until one satisfies `predicate`. On
 * the way only "held, holder unknown" may come: a holder that has locked
 * but not yet written its record, or has cleared it but not yet unlocked.
 */
async function nextPolled(source, predicate) {
  for (;;) {
    const state = await source.next('state');
    if (predicate(state)) return state;
    assert.deepEqual([state.locked, state.pid], [true, null], `an unexpected state on the way: ${JSON.stringify(state)}`);
  }
}

test('without uv_poll (as in Bun) a backoff poll sees acquire, release and removal, with no inotify descriptor', async (t) => {
  const workspace = makeWorkspace(t);
  const watcher = startChild(t, 'watch-poll.js', [workspace]);
  assert.deepEqual(await watcher.next('state'), { event: 'state', locked: false, pid: null });
  assert.deepEqual(await watcher.next('fds'), { event: 'fds', inotify: 0 });
  const holder = await startHolder(t, workspace, 'polled');
  await nextPolled(watcher, (state) => state.pid === holder.pid);
  holder.send('release');
  await nextPolled(watcher, (state) => !state.locked);
  const next = await startHolder(t, workspace, 'polled again');
  await nextPolled(watcher, (state) => state.pid === next.pid);
  if (HELD_FILES_STAY) {
    next.send('release');
    return void (await nextPolled(watcher, (state) => !state.locked));
  }
  fs.rmSync(path.join(workspace, '.ralph'), { recursive: true });
  assert.equal((await watcher.next('state')).locked, false);
});

test('no CPU while idle: a watch over a free and over a held lock, 2 s each', async (t) => {
  const workspace = makeWorkspace(t);
  for (const held of [false, true]) {
    const holder = held ? await startHolder(t, workspace, 'idle holder') : null;
    const watcher = startChild(t, 'watch-cpu.js', [workspace, '2000']);
    const { user, system } = await watcher.next('cpu');
    // A resource bound, not a timing one: a poll every few milliseconds
    // would cost far more, an idle event loop nearly nothing.
    assert.ok(user + system < 50_000, `${(user + system) / 1000} ms of CPU in 2 s (held: ${held})`);
    await watcher.exited;
    holder?.send('release');
    if (holder) await holder.next('released');
  }
});

test('worker threads watch, see the main thread acquire and release, and end cleanly or by terminate()', async (t) => {
  const workspace = makeWorkspace(t);
  const start = () => {
    const worker = new Worker(path.join(FIXTURES, 'watch-worker.js'), { workerData: { workspace } });
    const messages = [];
    let wake = null;
    worker.on('message', (message) => {
      messages.push(message);
      wake?.();
    });
    const next = async (event) => {
      for (;;) {
        const index = messages.findIndex((m) => m.event === event);
        if (index >= 0) return messages.splice(index, 1)[0];
        await new Promise((resolve) => {
          wake = resolve;
        });
      }
    };
    const exited = new Promise((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', resolve);
    });
    return { worker, next, exited };
  };

  const first = start();
  assert.deepEqual(await first.next('state'), { event: 'state', locked: false, pid: null, prompt: null });
  const guard = LoopLock.tryAcquire(workspace, 'main thread');
  assert.deepEqual(await nextPolled(first, (state) => state.pid !== null), {
    event: 'state',
    locked: true,
    pid: process.pid,
    prompt: 'main thread',
  });
  guard.release();
  await nextPolled(first, (state) => !state.locked);
  first.worker.postMessage('stop');
  await first.next('stopped');
  assert.equal(await first.exited, 0, 'the worker exits by itself once its watch ended');

  const second = start();
  await second.next('state');
  await second.worker.terminate();
  await second.exited;
  LoopLock.tryAcquire(workspace, 'after the worker').release();
});
