'use strict';
// Other flock() users on the same file: util-linux flock(1) and Python's
// fcntl.flock, standing in for the Rust reference (nix::fcntl::Flock), which
// takes the same whole-file flock.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { AlreadyLockedError, LoopLock } = require('../dist');
const { lockPathIn, makeWorkspace, startChild } = require('./helpers');

const hasCommand = (name) => spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
const noFlock = hasCommand('flock') ? false : 'util-linux flock is not installed';
const noPython = hasCommand('python3') ? false : 'python3 is not installed';

function prepareLockFile(workspace, text = '') {
  fs.mkdirSync(path.join(workspace, '.ralph'), { recursive: true });
  fs.writeFileSync(lockPathIn(workspace), text);
}

// Holds LOCK_EX on the file until stdin closes or gets a line; writes the
// record the way the Rust reference would (to_string_pretty, then nothing),
// stamped now with chrono's nanoseconds: a record older than its process
// would name a reused pid.
const PYTHON_HOLDER = `
import fcntl, json, os, sys, time
f = open(sys.argv[1], 'r+')
fcntl.flock(f, fcntl.LOCK_EX)
if sys.argv[2] == 'record':
    now = time.time_ns()
    started = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now // 10**9)) + '.%09dZ' % (now % 10**9)
    f.seek(0); f.truncate()
    f.write(json.dumps({'pid': os.getpid(), 'started': started, 'prompt': 'from python'}, indent=2))
    f.flush()
print(json.dumps({'event': 'locked'}), flush=True)
sys.stdin.readline()
`;

// Tries LOCK_EX|LOCK_NB once and reports which exception, if any, it raised.
const PYTHON_TRY = `
import fcntl, json, sys
f = open(sys.argv[1], 'r+')
try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('acquired')
except BlockingIOError:
    print('BlockingIOError')
`;

test('a lock held by util-linux flock is seen as held, with holder null for an empty file', { skip: noFlock }, async (t) => {
  const workspace = makeWorkspace(t);
  prepareLockFile(workspace);
  const peer = startChild(t, null, ['-n', lockPathIn(workspace), '-c', 'echo \'{"event":"locked"}\'; read line'], {
    command: 'flock',
  });
  await peer.next('locked');

  assert.equal(LoopLock.isLocked(workspace), true);
  assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
  assert.throws(
    () => LoopLock.tryAcquire(workspace, 'node'),
    (error) => error instanceof AlreadyLockedError && error.holder === null,
  );
  assert.equal(fs.readFileSync(lockPathIn(workspace), 'utf8'), '', 'the losing attempt wrote nothing');

  peer.send('');
  assert.equal((await peer.exited).code, 0);
  assert.equal(LoopLock.isLocked(workspace), false);
  LoopLock.tryAcquire(workspace, 'node').release();
});

test('while loop-lock holds the lock, `flock -n` exits 1, and exits 0 after release', { skip: noFlock }, (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'node holds');
  const held = spawnSync('flock', ['-n', guard.lockPath, '-c', 'true']);
  guard.release();
  const free = spawnSync('flock', ['-n', guard.lockPath, '-c', 'true']);
  assert.equal(held.status, 1);
  assert.equal(free.status, 0);
});

test('a shared flock(1) reader does not count as a holder but blocks tryAcquire', { skip: noFlock }, async (t) => {
  // isLocked probes with LOCK_SH, which coexists with other shared locks;
  // tryAcquire needs LOCK_EX, which does not.
  const workspace = makeWorkspace(t);
  prepareLockFile(workspace);
  const reader = startChild(t, null, ['-s', '-n', lockPathIn(workspace), '-c', 'echo \'{"event":"locked"}\'; read line'], {
    command: 'flock',
  });
  await reader.next('locked');
  assert.equal(LoopLock.isLocked(workspace), false);
  assert.throws(() => LoopLock.tryAcquire(workspace, 'node'), AlreadyLockedError);
  reader.send('');
  await reader.exited;
});

test("a lock held by Python's fcntl.flock is seen as held, with the record it wrote", { skip: noPython }, async (t) => {
  const workspace = makeWorkspace(t);
  prepareLockFile(workspace);
  const peer = startChild(t, null, ['-c', PYTHON_HOLDER, lockPathIn(workspace), 'record'], { command: 'python3' });
  await peer.next('locked');

  assert.equal(LoopLock.isLocked(workspace), true);
  const started = JSON.parse(fs.readFileSync(lockPathIn(workspace), 'utf8')).started;
  assert.match(started, /\.\d{9}Z$/);
  // Milliseconds kept, the rest cut.
  const expected = { pid: peer.pid, started: new Date(`${started.slice(0, 23)}Z`), prompt: 'from python' };
  assert.deepEqual(LoopLock.status(workspace).holder, expected);
  assert.throws(
    () => LoopLock.tryAcquire(workspace, 'node'),
    (error) => error instanceof AlreadyLockedError && error.holder.pid === peer.pid && error.holder.prompt === 'from python',
  );

  peer.send('');
  assert.equal((await peer.exited).code, 0);
  const guard = LoopLock.tryAcquire(workspace, 'node');
  guard.release();
  assert.equal(LoopLock.readExisting(workspace).prompt, 'node', 'the longer python record was replaced whole');
  JSON.parse(fs.readFileSync(lockPathIn(workspace), 'utf8'));
});

test("while loop-lock holds the lock, Python's LOCK_EX|LOCK_NB raises BlockingIOError", { skip: noPython }, (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'node holds');
  const held = spawnSync('python3', ['-c', PYTHON_TRY, guard.lockPath], { encoding: 'utf8' });
  guard.release();
  const free = spawnSync('python3', ['-c', PYTHON_TRY, guard.lockPath], { encoding: 'utf8' });
  assert.equal(held.stdout.trim(), 'BlockingIOError', held.stderr);
  assert.equal(free.stdout.trim(), 'acquired', free.stderr);
});

test('a record loop-lock writes parses with Python json into the fields the reference expects', { skip: noPython }, (t) => {
  const workspace = makeWorkspace(t);
  const prompt = 'multi\nline "quoted" 😀';
  const guard = LoopLock.tryAcquire(workspace, prompt);
  guard.release();
  const parsed = spawnSync(
    'python3',
    ['-c', 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps([list(d), d["pid"], d["prompt"], d["started"]]))', guard.lockPath],
    { encoding: 'utf8' },
  );
  assert.deepEqual(JSON.parse(parsed.stdout), [
    ['pid', 'started', 'prompt'],
    process.pid,
    prompt,
    guard.metadata.started.toISOString(),
  ]);
});
