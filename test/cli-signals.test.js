'use strict';
// What `loop-lock run` does with signals: every one that would end it and
// that it can catch reaches the command; on Windows, which has none to
// forward, a killed run takes its command with it.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { LoopLock } = require('../dist');
const { FORWARDED_SIGNALS } = require('../dist/cli-signals.js');
const { FIXTURES, isAlive, makeWorkspace: workspace, until } = require('./helpers');
const { NODE, loopLock } = require('./cli-helpers');

const TRAP_SIGNAL = join(FIXTURES, 'cli-trap-signal.js');

// Every signal that would end `run` and can be caught, SIGQUIT, SIGUSR1 and
// SIGUSR2 among them: one that ended it would leave the command running
// without the lock.
test('run forwards SIGQUIT, SIGUSR1 and SIGUSR2 among others', (t) => {
  if (process.platform === 'win32') return t.skip('Windows has no signals to forward (see the Job Object test)');
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']) {
    assert.ok(FORWARDED_SIGNALS.includes(signal), signal);
  }
});

// Bun lists these signals but cannot catch them: its handler for SIGSTKFLT
// never runs (the default action ends the process) and SIGPWR is dropped,
// and its process.kill() refuses both names.
const UNCATCHABLE_UNDER_BUN = new Set(['SIGSTKFLT', 'SIGPWR']);

for (const signal of FORWARDED_SIGNALS) {
  test(`run forwards ${signal} to the command, exits with its code and releases the lock after it exits`, async (t) => {
    if (process.platform === 'win32') {
      return t.skip('Windows has no signals to forward: process.kill() ends run at once (see the Job Object test)');
    }
    if (process.versions.bun && UNCATCHABLE_UNDER_BUN.has(signal)) {
      return t.skip(`Bun cannot catch ${signal}`);
    }
    const dir = workspace(t);
    const marker = join(dir, 'signal');
    const run = loopLock(t, 'run', dir, '--', NODE, TRAP_SIGNAL, marker);
    const commandPid = Number((await run.printed('stdout', '\n')).match(/^ready (\d+)/)[1]);
    await until(() => LoopLock.status(dir).holder?.pid === commandPid, 'the record names the command');

    // process.kill, not child.kill: Deno reports a child it was asked to
    // kill as killed by that signal, even when the child caught it and exited.
    process.kill(run.child.pid, signal);
    const result = await run.exited;
    assert.equal(result.code, 42, result.stderr);
    assert.equal(readFileSync(marker, 'utf8'), signal);
    assert.equal(LoopLock.isLocked(dir), false);
  });
}

test('a killed run takes its command with it, so nothing runs without the lock (Windows: a Job Object)', async (t) => {
  if (process.platform !== 'win32') {
    return t.skip('POSIX: a SIGKILLed run leaves the lock with its command\'s tree instead (cli-run.test.js)');
  }
  const dir = workspace(t);
  // libuv already ends a process's direct children with it; a detached
  // grandchild escapes that, but not the Job Object.
  const script = [
    "const { spawn } = require('node:child_process');",
    "const grandchild = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20_000)'], { detached: true, stdio: 'ignore' });",
    'process.stdout.write(`pids ${process.pid} ${grandchild.pid}\\n`);',
    'setTimeout(() => {}, 20_000);',
  ].join('\n');
  const run = loopLock(t, 'run', dir, '--', NODE, '-e', script);
  const pids = (await run.printed('stdout', '\n')).match(/pids (\d+) (\d+)/).slice(1).map(Number);
  t.after(() => {
    for (const pid of pids) if (isAlive(pid)) process.kill(pid);
  });
  assert.equal(LoopLock.status(dir).holder.pid, run.child.pid);
  run.child.kill('SIGKILL');
  await run.exited;
  await until(() => pids.every((pid) => !isAlive(pid)), 'the command and its detached child have ended with run');
  assert.equal(LoopLock.isLocked(dir), false);
});
