'use strict';
// The loop-lock command's workspace and `run`'s hold on its command's whole
// process tree, with real processes: the command and what it starts meet
// the test on readiness markers, never a delay.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { AlreadyLockedError, LoopLock } = require('../dist');
const { makeWorkspace, until } = require('./helpers');

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

/** Runs the CLI to its end; resolves with {code, signal, stdout, stderr}. */
function loopLock(args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (output.stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, ...output }));
  });
}

test('without DIR, status finds the workspace as ralph does: the nearest .git up, or RALPH_WORKSPACE_ROOT', async (t) => {
  const root = makeWorkspace(t);
  const deep = path.join(root, 'a', 'b');
  fs.mkdirSync(deep, { recursive: true });
  fs.mkdirSync(path.join(root, '.git'));
  const env = { ...process.env };
  delete env.RALPH_WORKSPACE_ROOT;
  const found = await loopLock(['status'], { cwd: deep, env });
  assert.equal(found.stdout, `${path.join(root, '.ralph', 'loop.lock')}: free\n`);
  const named = await loopLock(['status'], { cwd: deep, env: { ...env, RALPH_WORKSPACE_ROOT: deep } });
  assert.equal(named.stdout, `${path.join(deep, '.ralph', 'loop.lock')}: free\n`);
  const given = await loopLock(['status', '.'], { cwd: deep, env });
  assert.equal(given.stdout, `${path.join(deep, '.ralph', 'loop.lock')}: free\n`, 'a DIR given is used as it is');
});

test('a script whose #! interpreter is missing: the message names the interpreter, not the script, as missing', async (t) => {
  const dir = makeWorkspace(t);
  const script = path.join(dir, 'x.sh');
  fs.writeFileSync(script, '#!/nonexistent/interpreter -e\necho never\n', { mode: 0o755 });
  const result = await loopLock(['run', dir, '--', './x.sh'], { cwd: dir });
  assert.equal(result.code, 127);
  assert.equal(
    result.stderr,
    'loop-lock: cannot start ./x.sh: its interpreter /nonexistent/interpreter (named on its #! line) was not found (ENOENT)\n',
  );
  const missing = await loopLock(['run', dir, '--', './y.sh'], { cwd: dir });
  assert.equal(missing.stderr, 'loop-lock: command not found: ./y.sh (ENOENT)\n');
});

// A copy of `true` whose ELF interpreter path is changed to one that does
// not exist, byte for byte the same length: execve() fails with ENOENT.
const LOADER = '/lib64/ld-linux-x86-64.so.2';
const trueBinary = ['/usr/bin/true', '/bin/true'].find((file) => fs.existsSync(file));
const elf = trueBinary && fs.readFileSync(trueBinary);
test('a binary whose loader is missing: the message says the loader, not the command, is missing', {
  skip: process.platform !== 'linux' || !elf || elf.indexOf(LOADER) < 0 ? `no ${LOADER} in true here` : false,
}, async (t) => {
  const dir = makeWorkspace(t);
  const copy = Buffer.from(elf);
  copy.write('/lib64/ld-linux-x86-64.so.X', copy.indexOf(LOADER), 'latin1');
  fs.writeFileSync(path.join(dir, 'tool'), copy, { mode: 0o755 });
  const result = await loopLock(['run', dir, '--', './tool'], { cwd: dir });
  assert.equal(result.code, 127);
  assert.match(result.stderr, /cannot start \.\/tool: it exists, but the loader it needs \(its ELF interpreter\) was not found \(ENOENT\)/);
});

// `run`'s hold on its command's process tree. The commands are sh scripts
// that write their pids to files and wait on files the test creates.

const POSIX = process.platform !== 'win32';

/** Whether a process has ended: gone, or a zombie no one has collected yet (its descriptors are closed). */
function ended(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

/** Starts `loop-lock run DIR -- sh -c SCRIPT` in DIR; `exited` resolves with its code and signal. */
function runShell(t, dir, script) {
  const child = spawn(process.execPath, [CLI, 'run', dir, '--', 'sh', '-c', script], { cwd: dir, stdio: 'inherit' });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => child.kill('SIGKILL'));
  return { child, exited };
}

/** The pid a script wrote to `file` in `dir`, once it has. */
async function pidIn(dir, file) {
  const where = path.join(dir, file);
  await until(() => fs.existsSync(where) && fs.readFileSync(where, 'utf8').endsWith('\n'), `${file} is written`);
  return Number(fs.readFileSync(where, 'utf8'));
}

/** Ends every process of the script's group when the test ends, whatever happened. */
function reapGroup(t, group) {
  t.after(() => {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {}
  });
}

test('run gets SIGTERM: the whole tree of its command ends, and the lock is free only once it has', { skip: !POSIX, timeout: 60_000 }, async (t) => {
  const dir = makeWorkspace(t);
  const run = runShell(t, dir, 'echo $$ > shell; sleep 1000 & echo $! > sleeper; wait');
  const shell = await pidIn(dir, 'shell');
  reapGroup(t, shell);
  const sleeper = await pidIn(dir, 'sleeper');
  await until(() => LoopLock.status(dir).holder?.pid === shell, 'the record names the command');
  process.kill(run.child.pid, 'SIGTERM');
  assert.deepEqual(await run.exited, { code: 143, signal: null });
  assert.ok(ended(shell), 'the command ended');
  assert.ok(ended(sleeper), 'what it started in the background ended too');
  assert.equal(LoopLock.isLocked(dir), false);
});

test('the command exits and leaves a process behind: run ends it, holding the lock and naming itself until it has', { skip: !POSIX, timeout: 60_000 }, async (t) => {
  const dir = makeWorkspace(t);
  // The background subshell takes its time to end once told: until the test creates "release".
  // The command exits once the subshell's trap is set.
  const straggler = 'trap "echo > term; while [ ! -e release ]; do sleep 0.01; done; exit 0" TERM; echo > trapped; while :; do sleep 0.01; done';
  const run = runShell(t, dir, `echo $$ > shell; (${straggler}) & echo $! > straggler; while [ ! -e trapped ]; do sleep 0.01; done; exit 3`);
  const shell = await pidIn(dir, 'shell');
  reapGroup(t, shell);
  const pid = await pidIn(dir, 'straggler');
  await until(() => fs.existsSync(path.join(dir, 'term')), 'the straggler got SIGTERM');
  assert.equal(ended(pid), false);
  assert.equal(LoopLock.isLocked(dir), true, 'held while the straggler ends');
  assert.equal(LoopLock.status(dir).holder?.pid, run.child.pid, 'the record names run meanwhile');
  fs.writeFileSync(path.join(dir, 'release'), '');
  assert.deepEqual(await run.exited, { code: 3, signal: null }, "run exits with the command's code");
  assert.ok(ended(pid));
  assert.equal(LoopLock.isLocked(dir), false);
});

test('run SIGKILLed: the command keeps the lock while it runs, status names it, and its exit frees the lock', { skip: !POSIX, timeout: 60_000 }, async (t) => {
  const dir = makeWorkspace(t);
  const run = runShell(t, dir, 'echo $$ > shell; while [ ! -e stop ]; do sleep 0.01; done');
  const shell = await pidIn(dir, 'shell');
  reapGroup(t, shell);
  await until(() => LoopLock.status(dir).holder?.pid === shell, 'the record names the command');
  process.kill(run.child.pid, 'SIGKILL');
  assert.deepEqual(await run.exited, { code: null, signal: 'SIGKILL' });
  assert.equal(ended(shell), false);
  const { locked, holder } = LoopLock.status(dir);
  assert.equal(locked, true, 'the command holds the lock through the descriptor it inherited');
  assert.equal(holder?.pid, shell, 'status names the command, alive');
  assert.throws(() => LoopLock.tryAcquire(dir, 'intruder'), AlreadyLockedError);
  fs.writeFileSync(path.join(dir, 'stop'), '');
  await until(() => !LoopLock.isLocked(dir), 'the lock is free once the command exits');
  assert.ok(ended(shell));
  LoopLock.tryAcquire(dir, 'next').release();
});

test('run SIGKILLed, then the command exits leaving a child that holds the lock: status names nobody, never the dead command', { skip: !POSIX, timeout: 60_000 }, async (t) => {
  const dir = makeWorkspace(t);
  const run = runShell(
    t,
    dir,
    'echo $$ > shell; (while [ ! -e stop ]; do sleep 0.01; done) & echo $! > child; while [ ! -e exit ]; do sleep 0.01; done',
  );
  const shell = await pidIn(dir, 'shell');
  reapGroup(t, shell);
  const child = await pidIn(dir, 'child');
  await until(() => LoopLock.status(dir).holder?.pid === shell, 'the record names the command');
  process.kill(run.child.pid, 'SIGKILL');
  assert.deepEqual(await run.exited, { code: null, signal: 'SIGKILL' });
  fs.writeFileSync(path.join(dir, 'exit'), '');
  await until(() => ended(shell), 'the command exits');
  assert.equal(ended(child), false);
  assert.deepEqual(LoopLock.status(dir), { locked: true, holder: null }, 'held by the child, which no record names');
  assert.throws(
    () => LoopLock.tryAcquire(dir, 'intruder'),
    (error) => error instanceof AlreadyLockedError && error.holder === null,
  );
  fs.writeFileSync(path.join(dir, 'stop'), '');
  await until(() => !LoopLock.isLocked(dir), 'the lock is free once the child exits');
});
