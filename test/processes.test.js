'use strict';
// Other processes: the lock excludes them, a crash frees it, and nothing a
// holder spawns inherits it.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { AlreadyLockedError, LoopLock } = require('../dist');
const { FIXTURES, isAlive, makeWorkspace, startChild } = require('./helpers');

function startHolder(t, config) {
  return startChild(t, 'holder.js', [JSON.stringify({ mode: 'try', ...config })]);
}

test("a child holding the lock makes tryAcquire fail with the child's pid and prompt", async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'child task' });
  const locked = await holder.next('locked');
  assert.equal(locked.pid, holder.pid);

  assert.throws(
    () => LoopLock.tryAcquire(workspace, 'parent task'),
    (error) => {
      assert.ok(error instanceof AlreadyLockedError);
      assert.equal(error.holder.pid, holder.pid);
      assert.equal(error.holder.prompt, 'child task');
      assert.equal(error.holder.started.toISOString(), locked.metadata.started);
      return true;
    },
  );
  assert.equal(LoopLock.isLocked(workspace), true);
  const { holder: seen } = LoopLock.status(workspace);
  assert.equal(seen.pid, holder.pid);
  assert.equal(seen.prompt, 'child task');

  holder.send('release');
  await holder.next('released');
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'parent task').release();
});

test('a parent holding the lock makes a child fail with the parent as holder', async (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'parent holds');
  try {
    const child = startHolder(t, { workspace, prompt: 'child wants' });
    const error = await child.next('error');
    assert.equal(error.name, 'AlreadyLockedError');
    assert.equal(error.code, 'ELOCKED');
    assert.equal(error.holder.pid, process.pid);
    assert.equal(error.holder.prompt, 'parent holds');
    assert.equal((await child.exited).code, 1);
  } finally {
    guard.release();
  }
});

test('a SIGKILLed holder frees the lock as soon as it is gone, leaving its record', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'doomed' });
  await holder.next('locked');
  assert.equal(LoopLock.isLocked(workspace), true);
  holder.child.kill('SIGKILL');
  assert.equal((await holder.exited).signal, 'SIGKILL');

  assert.equal(LoopLock.isLocked(workspace), false);
  assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });
  assert.equal(LoopLock.readExisting(workspace).pid, holder.pid, 'the dead holder is still on record');
  const guard = LoopLock.tryAcquire(workspace, 'successor');
  assert.equal(LoopLock.readExisting(workspace).pid, process.pid);
  guard.release();
});

test('a holder that exits without releasing frees the lock', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'exits' });
  await holder.next('locked');
  holder.send('exit');
  assert.equal((await holder.exited).code, 0);
  assert.equal(LoopLock.isLocked(workspace), false);
});

test("a grandchild spawned by the holder does not inherit the lock (O_CLOEXEC)", async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'spawns', grandchild: true });
  const { lockPath } = await holder.next('locked');
  const { pid: sleeper } = await holder.next('grandchild');
  t.after(() => {
    if (isAlive(sleeper)) process.kill(sleeper, 'SIGKILL');
  });

  if (process.platform === 'linux') {
    const inherited = fs
      .readdirSync(`/proc/${sleeper}/fd`)
      .map((fd) => {
        try {
          return fs.readlinkSync(`/proc/${sleeper}/fd/${fd}`);
        } catch {
          return null;
        }
      })
      .filter((target) => target === lockPath);
    assert.deepEqual(inherited, [], 'the grandchild has no descriptor of the lock file');
  }

  // An inherited descriptor or handle would keep the lock after the holder dies.
  holder.child.kill('SIGKILL');
  await holder.exited;
  assert.equal(isAlive(sleeper), true, 'the grandchild outlives its parent');
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'after the holder died').release();
});

test('locks on different lock files in different processes do not interfere', async (t) => {
  const workspace = makeWorkspace(t);
  const holder = startHolder(t, { workspace, prompt: 'a', lockFile: 'a.lock' });
  await holder.next('locked');
  const guard = LoopLock.tryAcquire(workspace, 'b', { lockFile: 'b.lock' });
  guard.release();
  assert.equal(LoopLock.isLocked(workspace, { lockFile: 'a.lock' }), true);
  assert.equal(LoopLock.isLocked(workspace), false);
  assert.equal(fs.existsSync(path.join(workspace, '.ralph')), false);
});

test('a process that used the lock ends on its own with exit code 0: released, waited for, or held at exit', (t) => {
  // Deno aborted such processes at exit, in the addon's teardown hooks.
  for (const how of ['release', 'wait', 'hold']) {
    const workspace = makeWorkspace(t);
    const result = spawnSync(process.execPath, [path.join(FIXTURES, 'exit-after.js'), workspace, how], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.signal, null, `${how}: killed by ${result.signal}\n${result.stderr}`);
    assert.equal(result.status, 0, `${how}: exit code ${result.status}\n${result.stderr}`);
    assert.equal(result.stderr, '', how);
    assert.equal(LoopLock.isLocked(workspace), false, `${how}: the lock is free after the exit`);
  }
});
