'use strict';
// LoopLock.watch() follows the path as it resolves now: a symbolic link on
// it re-pointed (ln -sfn) is seen, at the workspace or further up; a loop of
// links or a dangling one is nothing there, until it changes.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { makeWorkspace, startChild, UNDER_WINE } = require('./helpers');

const FREE = { locked: false, holder: null };
const NO_SYMLINKS = process.platform === 'win32' && (UNDER_WINE ? 'Wine follows symbolic links as plain files' : 'symbolic links need privileges on Windows');

/** Re-points `link` at `target` as `ln -sfn` does: a new link renamed over the old one. */
function repoint(link, target) {
  const fresh = `${link}.new`;
  fs.symlinkSync(target, fresh);
  fs.renameSync(fresh, link);
}

/** Starts the holder fixture on `workspace`; resolves once it holds. */
async function startHolder(t, workspace, prompt) {
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt, mode: 'try' })]);
  await holder.next('locked');
  return holder;
}

/** Reads states until one satisfies `predicate` (5 s at most). */
async function stateWhere(states, predicate, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no state within 5 s: ${what}`)), 5000);
  });
  try {
    for (;;) {
      const { value, done } = await Promise.race([states.next(), timeout]);
      assert.equal(done, false, `the watch ended while waiting for ${what}`);
      if (predicate(value)) return value;
    }
  } finally {
    clearTimeout(timer);
  }
}

const heldBy = (pid) => (state) => state.locked && state.holder?.pid === pid;
const isFree = (state) => !state.locked;

test('a workspace link re-pointed from a free workspace to a held one and back: held with its holder, then free', { skip: NO_SYMLINKS }, async (t) => {
  const root = makeWorkspace(t);
  const [free, held, link] = ['t1', 't2', 'link'].map((name) => path.join(root, name));
  fs.mkdirSync(free);
  fs.mkdirSync(held);
  fs.symlinkSync(free, link);
  const holder = await startHolder(t, held, 'behind the link');
  const states = LoopLock.watch(link);
  t.after(() => states.return());
  assert.deepEqual((await states.next()).value, FREE);

  repoint(link, held);
  const state = await stateWhere(states, heldBy(holder.pid), 'the holder after re-pointing');
  assert.equal(state.holder.prompt, 'behind the link');
  repoint(link, free);
  await stateWhere(states, isFree, 'free after pointing back');
  // Still followed: the free workspace taken now is seen.
  const next = await startHolder(t, free, 'in the first workspace');
  await stateWhere(states, heldBy(next.pid), 'the holder of the first workspace');
});

test('a link in the middle of the path (root/a -> x) re-pointed: the watch follows it', { skip: NO_SYMLINKS }, async (t) => {
  const root = makeWorkspace(t);
  for (const dir of ['x/ws', 'y/ws']) fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.symlinkSync('x', path.join(root, 'a'));
  const holder = await startHolder(t, path.join(root, 'y', 'ws'), 'under y');
  const states = LoopLock.watch(path.join(root, 'a', 'ws'));
  t.after(() => states.return());
  assert.deepEqual((await states.next()).value, FREE);

  repoint(path.join(root, 'a'), 'y');
  await stateWhere(states, heldBy(holder.pid), 'the holder under y');
  fs.unlinkSync(path.join(root, 'a'));
  await stateWhere(states, isFree, 'free once the link is gone');
  fs.symlinkSync('y', path.join(root, 'a'));
  await stateWhere(states, heldBy(holder.pid), 'the holder once the link is back');
});

test('a loop of links or a dangling link on the path: free, no error, and followed once it resolves', { skip: NO_SYMLINKS }, async (t) => {
  const root = makeWorkspace(t);
  const [one, two, dangling] = ['one', 'two', 'dangling'].map((name) => path.join(root, name));
  fs.symlinkSync(two, one);
  fs.symlinkSync(one, two);
  fs.symlinkSync(path.join(root, 'later'), dangling);
  const looped = LoopLock.watch(one);
  const hanging = LoopLock.watch(dangling);
  t.after(() => Promise.all([looped.return(), hanging.return()]));
  assert.deepEqual((await looped.next()).value, FREE);
  assert.deepEqual((await hanging.next()).value, FREE);
  assert.deepEqual(LoopLock.status(dangling), FREE);

  fs.mkdirSync(path.join(root, 'later'));
  const holder = await startHolder(t, path.join(root, 'later'), 'where the link pointed');
  await stateWhere(hanging, heldBy(holder.pid), 'the holder behind the dangling link');
  repoint(two, path.join(root, 'later'));
  await stateWhere(looped, heldBy(holder.pid), 'the holder once the loop is broken');
});

test('without uv_poll (as in Bun) the backoff poll follows a re-pointed link too', { skip: NO_SYMLINKS }, async (t) => {
  const root = makeWorkspace(t);
  const [free, held, link] = ['t1', 't2', 'link'].map((name) => path.join(root, name));
  fs.mkdirSync(free);
  fs.mkdirSync(held);
  fs.symlinkSync(free, link);
  const holder = await startHolder(t, held, 'polled behind the link');
  const watcher = startChild(t, 'watch-poll.js', [link]);
  assert.deepEqual(await watcher.next('state'), { event: 'state', locked: false, pid: null });
  const polled = async (predicate) => {
    for (;;) if (predicate(await watcher.next('state'))) return;
  };
  repoint(link, held);
  await polled((state) => state.pid === holder.pid);
  repoint(link, free);
  await polled((state) => !state.locked);
});
