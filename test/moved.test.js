'use strict';
// A waiter follows its path: when .ralph, or the workspace itself, is moved
// away while another process holds the lock, the path names no locked file
// any more (a newcomer's tryAcquire would succeed), and a waiter in
// acquire() or acquireBlocking() takes the file now at the path instead of
// waiting for a holder that no longer stands in its way.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { isAlive, isWaitingOn, makeWorkspace, startChild, until } = require('./helpers');

const moves = {
  'mv ws/.ralph ws/.ralph.old': (ws) => fs.renameSync(path.join(ws, '.ralph'), path.join(ws, '.ralph.old')),
  'mv ws ws.old && mkdir ws': (ws) => {
    fs.renameSync(ws, `${ws}.old`);
    // The waiter may re-create the path (parents included) before this mkdir.
    fs.mkdirSync(ws, { recursive: true });
  },
};

for (const mode of ['wait', 'blocking']) {
  for (const [move, run] of Object.entries(moves)) {
    const call = mode === 'wait' ? 'acquire()' : 'acquireBlocking()';
    test(`a waiter in ${call} in another process follows \`${move}\` while the holder still holds the old file`, { timeout: 10_000 }, async (t) => {
      const ws = path.join(makeWorkspace(t), 'ws');
      const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace: ws, prompt: 'holder', mode: 'try' })]);
      const { lockPath } = await holder.next('locked');
      const waiter = startChild(t, 'holder.js', [JSON.stringify({ workspace: ws, prompt: 'waiter', mode })]);
      await until(() => isWaitingOn(waiter.pid, lockPath), 'the waiter is waiting');

      const moved = performance.now();
      run(ws);
      const locked = await waiter.next('locked');
      const tookMs = performance.now() - moved;
      assert.equal(locked.lockPath, lockPath);
      assert.equal(locked.state, 'held');
      assert.equal(LoopLock.status(ws).holder?.pid, waiter.pid, 'the waiter holds the file now at the path');
      assert.ok(isAlive(holder.pid), 'the old holder still runs');
      // The backoff poll reaches 100 ms between ticks; leave room for a
      // loaded machine, far below "until the holder exits".
      assert.ok(tookMs < 2000, `followed after ${tookMs.toFixed(0)} ms`);
    });
  }
}
