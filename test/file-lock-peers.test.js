'use strict';
// FileLock against other flock() users on the same sidecar: util-linux
// flock(1), Python's fcntl.flock and the Rust peer's copy of ralph-core's
// file_lock.rs, each way round, in both modes.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { before, test } = require('node:test');
const { FileLock } = require('../dist');
const { makeWorkspace, startChild, until, waitUntilWaiting } = require('./helpers');
const { buildPeer, missingToolchain, startPeer } = require('./rust-peer-tool');

const hasCommand = (name) => spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
const noFlock = hasCommand('flock') ? false : 'util-linux flock is not installed';
const noPython = hasCommand('python3') ? false : 'python3 is not installed';
const noRust = missingToolchain();

before(() => {
  if (!noRust) buildPeer();
});

const MODES = ['shared', 'exclusive'];
const PAIRS = MODES.flatMap((held) => MODES.map((tried) => [held, tried]));
const compatible = (held, tried) => held === 'shared' && tried === 'shared';
const tryIn = (lock, mode) => (mode === 'shared' ? lock.tryShared() : lock.tryExclusive());

// Takes the lock in argv[2] mode on argv[1]; "try" exits 1 when it is
// taken, "hold" blocks for it, says so, and keeps it until stdin closes.
const PYTHON = `
import fcntl, sys
f = open(sys.argv[1], 'a+')
mode = fcntl.LOCK_SH if sys.argv[2] == 'shared' else fcntl.LOCK_EX
if sys.argv[3] == 'try':
    try:
        fcntl.flock(f, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(1)
    sys.exit(0)
fcntl.flock(f, mode)
print('{"event":"locked"}', flush=True)
sys.stdin.readline()
`;

/** How each foreign peer tries a lock without waiting (true: got it) and holds one, blocking until it has it. */
const FOREIGN = {
  'util-linux flock': {
    skip: noFlock,
    try: (file, mode) => spawnSync('flock', ['-n', mode === 'shared' ? '-s' : '-x', file, '-c', 'true']).status === 0,
    hold: (t, file, mode) =>
      startChild(t, null, [mode === 'shared' ? '-s' : '-x', file, '-c', 'echo \'{"event":"locked"}\'; read line'], {
        command: 'flock',
      }),
  },
  "Python's fcntl.flock": {
    skip: noPython,
    try: (file, mode) => spawnSync('python3', ['-c', PYTHON, file, mode, 'try']).status === 0,
    hold: (t, file, mode) => startChild(t, null, ['-c', PYTHON, file, mode, 'hold'], { command: 'python3' }),
  },
};

/** Whether process `pid` is blocked in flock() on `file`: a "->" line of /proc/locks names it. */
function isBlockedOn(pid, file) {
  const { ino } = fs.statSync(file);
  return fs
    .readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((line) => / -> FLOCK /.test(line) && line.split(/\s+/).includes(String(pid)) && line.includes(`:${ino} `));
}

for (const [name, peer] of Object.entries(FOREIGN)) {
  for (const [held, tried] of PAIRS) {
    test(`${name}: while Node holds ${held}, ${tried === "shared" ? "a" : "an"} ${tried} try ${compatible(held, tried) ? 'succeeds' : 'fails'}`, { skip: peer.skip }, (t) => {
      const lock = new FileLock(path.join(makeWorkspace(t), 'tasks.jsonl'));
      const guard = tryIn(lock, held);
      assert.equal(peer.try(lock.lockPath, tried), compatible(held, tried));
      guard.release();
      assert.equal(peer.try(lock.lockPath, tried), true, 'free once released');
    });

    test(`${name}: while it holds ${held}, Node's ${tried} try ${compatible(held, tried) ? 'succeeds' : 'returns null'}`, { skip: peer.skip }, async (t) => {
      const lock = new FileLock(path.join(makeWorkspace(t), '.ralph', 'agent', 'tasks.jsonl'));
      fs.mkdirSync(path.dirname(lock.lockPath), { recursive: true });
      const holder = peer.hold(t, lock.lockPath, held);
      await holder.next('locked');
      const guard = tryIn(lock, tried);
      assert.equal(guard !== null, compatible(held, tried));
      guard?.release();
      holder.send('');
      await holder.exited;
      const after = tryIn(lock, tried);
      assert.notEqual(after, null, 'free once the peer exits');
      after.release();
    });
  }

  test(`${name}: a blocked peer gets the lock when Node releases, and Node's wait when the peer does`, { skip: peer.skip || process.platform !== 'linux' }, async (t) => {
    const lock = new FileLock(path.join(makeWorkspace(t), 'memories.md'));
    const guard = lock.tryExclusive();
    const holder = peer.hold(t, lock.lockPath, 'shared');
    await until(() => isBlockedOn(holder.pid, lock.lockPath), 'the peer blocks in flock()');
    guard.release();
    await holder.next('locked');

    const writer = lock.exclusive();
    await waitUntilWaiting(process.pid, lock.lockPath, 'exclusive() waits');
    const reader = await lock.shared({ timeout: 60_000 });
    reader.release();
    holder.send('');
    const mine = await writer;
    assert.equal(mine.mode, 'exclusive');
    assert.equal(peer.try(lock.lockPath, 'shared'), false);
    mine.release();
  });
}

// Paths whose sidecar names differ in some rule of Rust's std::path.
const NAMES = [
  'tasks.jsonl',
  '.ralph/agent/tasks.jsonl',
  'memories.md',
  'noext',
  '.env',
  'dir/.env',
  'foo.',
  'a.b.c',
  '...',
  '.hidden.ext',
  'dir/',
  'dir//',
  'dir/.',
  'a//b//',
  './x',
  'x/../y',
  'x/..',
  '..',
  '.',
  '/',
  '/abs/file.txt',
  'spaces in name.tar.gz',
  'naïve/日本語.md',
];

test("the sidecar's name is the one Rust's with_extension gives, for every rule of std::path", { skip: noRust }, async (t) => {
  const peer = startPeer(t);
  const cwd = process.cwd();
  for (const name of NAMES) {
    const { lockPath } = await peer.ask('name', 'name', name);
    const expected = path.isAbsolute(lockPath) ? lockPath : `${cwd}/${lockPath}`;
    assert.equal(new FileLock(name).lockPath, expected, name);
  }
  // The table, as the peer gave it.
  assert.equal((await peer.ask('name', 'name', 'noext')).lockPath, 'noext..lock');
  assert.equal((await peer.ask('name', 'name', '.env')).lockPath, '.env..lock');
  assert.equal((await peer.ask('name', 'name', 'tasks.jsonl')).lockPath, 'tasks.jsonl.lock');
});

for (const [held, tried] of PAIRS) {
  test(`Rust file_lock: while Node holds ${held}, try_${tried} ${compatible(held, tried) ? 'succeeds' : 'returns None'}`, { skip: noRust }, async (t) => {
    const file = path.join(makeWorkspace(t), '.ralph', 'agent', 'tasks.jsonl');
    const lock = new FileLock(file);
    const peer = startPeer(t);
    const guard = tryIn(lock, held);
    const reply = await peer.ask('file-lock', 'file-lock', file, tried, 'try');
    assert.deepEqual(reply, { event: 'file-lock', acquired: compatible(held, tried), lockPath: lock.lockPath });
    await peer.ask('file-released', 'file-release');
    guard.release();
    assert.equal((await peer.ask('file-lock', 'file-lock', file, tried, 'try')).acquired, true, 'free once released');
  });

  test(`Rust file_lock: while it holds ${held}, Node's ${tried} try ${compatible(held, tried) ? 'succeeds' : 'returns null'}`, { skip: noRust }, async (t) => {
    const file = path.join(makeWorkspace(t), 'noext');
    const lock = new FileLock(file);
    const peer = startPeer(t);
    const reply = await peer.ask('file-lock', 'file-lock', file, held, 'try');
    assert.deepEqual(reply, { event: 'file-lock', acquired: true, lockPath: lock.lockPath }, 'the Rust side created noext..lock');
    const guard = tryIn(lock, tried);
    assert.equal(guard !== null, compatible(held, tried));
    guard?.release();
    await peer.ask('file-released', 'file-release');
    const after = tryIn(lock, tried);
    assert.notEqual(after, null, 'free once Rust drops its guard');
    after.release();
  });
}

test("Rust file_lock's blocking exclusive() gets the lock when Node's reader releases, and Node's wait when Rust does", { skip: noRust || process.platform !== 'linux' }, async (t) => {
  const file = path.join(makeWorkspace(t), '.env');
  const lock = new FileLock(file);
  const peer = startPeer(t);
  const reader = lock.tryShared();
  const taken = peer.ask('file-lock', 'file-lock', file, 'exclusive', 'block');
  await until(() => isBlockedOn(peer.pid, lock.lockPath), 'the Rust peer blocks in flock()');
  reader.release();
  assert.equal((await taken).acquired, true);

  const waiting = lock.shared();
  await waitUntilWaiting(process.pid, lock.lockPath, 'shared() waits');
  await peer.ask('file-released', 'file-release');
  const guard = await waiting;
  assert.equal(guard.mode, 'shared');
  guard.release();
});
