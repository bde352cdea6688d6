'use strict';
// Shared by the test files: temporary workspaces, and child processes that
// report what they did as one JSON object per stdout line.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');

const { LockError } = require('../dist');

const FIXTURES = path.join(__dirname, 'fixtures');

/** The loop lock's file in a workspace, where the library puts it by default. */
const lockPathIn = (workspace) => path.join(workspace, '.ralph', 'loop.lock');

/**
 * Why a test that needs a private mount namespace (`unshare -r -m`) cannot
 * run here, or false when it can: a test's `skip` option.
 */
const unshareUnavailable =
  spawnSync('unshare', ['-r', '-m', 'sh', '-c', 'true'], { stdio: 'ignore' }).status === 0
    ? false
    : 'unshare -r -m (user and mount namespaces) is not available';

/** Why a test cannot run a child as nobody, or false when it can: a `skip` option. */
const privilegeDropUnavailable =
  process.getuid?.() === 0 && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'needs root and setpriv to run a child as nobody';

/**
 * The runtime running the tests: 'node', 'bun' or 'deno' (npm run test:bun,
 * test:deno). Children spawned with process.execPath run under it too.
 */
const runtime = process.versions.bun ? 'bun' : process.versions.deno ? 'deno' : 'node';

/** Set by `npm run test:windows`: Windows, as Wine shows it. */
const UNDER_WINE = process.platform === 'win32' && process.env.LOOP_LOCK_TEST_WINE === '1';

// Windows cannot remove a directory while a file in it is open, and a
// test's child holder is killed by a hook that runs after the workspace's:
// such workspaces are removed when the test file's process exits.
const leftovers = [];

function removeWorkspace(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (error) {
    if (process.platform !== 'win32') throw error;
    if (leftovers.push(dir) > 1) return;
    process.on('exit', () => {
      for (const leftover of leftovers) fs.rmSync(leftover, { recursive: true, force: true, maxRetries: 5 });
    });
  }
}

/** A fresh empty directory, removed when the test ends. */
function makeWorkspace(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-lock-test-'));
  t.after(() => removeWorkspace(dir));
  return dir;
}

/**
 * Starts `node test/fixtures/<script> ...args` (or `command ...args` when
 * `options.command` is given). `next(event)` resolves with the next message
 * whose `event` matches and rejects if the child exits first. The child is
 * killed when the test ends.
 */
function startChild(t, script, args = [], options = {}) {
  const command = options.command ?? process.execPath;
  const argv = options.command ? args : [...(options.nodeArgs ?? []), path.join(FIXTURES, script), ...args];
  const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
  const inbox = [];
  const waiting = [];
  let stderr = '';
  let exitInfo = null;
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk;
  });
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      message = { event: 'text', line };
    }
    const index = waiting.findIndex((w) => w.event === message.event);
    if (index >= 0) waiting.splice(index, 1)[0].resolve(message);
    else inbox.push(message);
  });
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      exitInfo = { code, signal };
      for (const w of waiting.splice(0)) {
        w.reject(new Error(`child exited (${code ?? signal}) before '${w.event}'; stderr:\n${stderr}`));
      }
      resolve(exitInfo);
    });
  });
  t.after(async () => {
    if (exitInfo === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    child,
    pid: child.pid,
    exited,
    stderr: () => stderr,
    next(event) {
      const index = inbox.findIndex((m) => m.event === event);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]);
      if (exitInfo !== null) {
        return Promise.reject(new Error(`child already exited before '${event}'; stderr:\n${stderr}`));
      }
      return new Promise((resolve, reject) => waiting.push({ event, resolve, reject }));
    },
    send(line) {
      child.stdin.write(`${line}\n`);
    },
  };
}

/**
 * Whether process `pid` is waiting for the lock on `file` (acquire() or
 * acquireBlocking()): it has that inode open and an inotify watch on its
 * directory, as waits keep only while they wait. Proof that a waiter is
 * waiting, without a timer.
 */
function isWaitingOn(pid, file) {
  const { ino } = fs.statSync(file);
  const directory = fs.statSync(path.dirname(file)).ino.toString(16);
  const descriptors = (() => {
    try {
      return fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      return [];
    }
  })();
  const opened = (fd) => {
    try {
      return fs.statSync(`/proc/${pid}/fd/${fd}`).ino === ino;
    } catch {
      return false;
    }
  };
  const watch = new RegExp(`^inotify wd:\\S+ ino:${directory} `, 'm');
  const watches = (fd) => {
    try {
      return watch.test(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    } catch {
      return false;
    }
  };
  return descriptors.some(opened) && descriptors.some(watches);
}

/**
 * Resolves once process `pid` waits for the lock on `file` (see
 * isWaitingOn). Linux shows it in /proc; elsewhere there is nothing to
 * read, so this waits half a second after the caller saw the waiter start
 * to wait, which shows only that it has not taken the lock meanwhile.
 */
async function waitUntilWaiting(pid, file, what) {
  if (process.platform === 'linux') return until(() => isWaitingOn(pid, file), what);
  await new Promise((resolve) => setTimeout(resolve, 500));
}

/** Polls `predicate` every few milliseconds until it holds. */
async function until(predicate, what) {
  for (let i = 0; i < 2000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`gave up waiting until ${what}`);
}

/** Whether a process exists. */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if (error.code === 'ESRCH') return false;
    throw error;
  }
}

/**
 * Asserts that a guard reports its file `state` ('removed', 'replaced' or 'linked'):
 * not intact, and verify() throws ECOMPROMISED naming the path and the state.
 */
function assertCompromised(guard, state) {
  assert.equal(guard.state(), state);
  assert.equal(guard.isIntact(), false);
  assert.throws(
    () => guard.verify(),
    (error) =>
      error instanceof LockError &&
      error.code === 'ECOMPROMISED' &&
      error.path === guard.lockPath &&
      error.message.includes(guard.lockPath) &&
      error.message.includes(state),
  );
}

module.exports = {
  FIXTURES,
  UNDER_WINE,
  lockPathIn,
  unshareUnavailable,
  privilegeDropUnavailable,
  runtime,
  assertCompromised,
  makeWorkspace,
  startChild,
  isWaitingOn,
  waitUntilWaiting,
  until,
  isAlive,
};
