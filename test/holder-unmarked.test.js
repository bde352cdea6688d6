'use strict';
// The holder rule for a holder that writes no mark (ralph's Rust loop,
// flock(1) plus a record, Python's fcntl.flock): named only while the
// process the record names holds the lock, as the kernel shows it in that
// process's own /proc entries (a descriptor of its own that holds it),
// falling back to /proc/locks where those cannot be read. Not named when
// its pid was reused (the process started after the record was written),
// nor when the pid is another pid namespace's.
const { before, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { LoopLock, AlreadyLockedError } = require('../dist');
const { native } = require('../dist/native.js');
const { lockPathIn, makeWorkspace, startChild } = require('./helpers');
const { buildPeer, missingToolchain, startPeer } = require('./rust-peer-tool');

const hasCommand = (command, ...args) => spawnSync(command, args).status === 0;
const linux = process.platform === 'linux';
const noFlock = linux && hasCommand('flock', '--version') ? false : 'needs Linux and util-linux flock';
const noPython = linux && hasCommand('python3', '--version') ? false : 'needs Linux and python3';
const noRust = linux ? missingToolchain() : 'the Rust peer is built on Linux';
const noPidNamespace =
  !noPython && hasCommand('unshare', '--pid', '--fork', '--mount-proc', 'true')
    ? false
    : 'needs python3 and unshare --pid --mount-proc (root)';
const noOtherUser =
  !noFlock && process.getuid?.() === 0 && hasCommand('setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'true')
    ? false
    : 'needs root, setpriv and util-linux flock';

before(() => {
  if (!noRust) buildPeer();
});


/** A record as the reference writes it, naming `pid`, stamped `started` (default now). */
function writeRecord(workspace, pid, started = new Date()) {
  const record = { pid, started: started.toISOString(), prompt: 'unmarked' };
  fs.writeFileSync(lockPathIn(workspace), JSON.stringify(record, null, 2));
}

/** A workspace whose lock file exists, empty. */
function workspaceWithFile(t) {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.dirname(lockPathIn(workspace)));
  fs.writeFileSync(lockPathIn(workspace), '');
  return workspace;
}

/** The pid status() names, and the one a losing tryAcquire names (null for none). */
function namedHolders(workspace) {
  const { locked, holder } = LoopLock.status(workspace);
  assert.equal(locked, true, 'the lock is held');
  let loser;
  try {
    LoopLock.tryAcquire(workspace, 'loser').release();
    assert.fail('tryAcquire took a held lock');
  } catch (error) {
    if (!(error instanceof AlreadyLockedError)) throw error;
    loser = error.holder;
  }
  return { status: holder?.pid ?? null, tryAcquire: loser?.pid ?? null };
}

const named = (pid) => ({ status: pid, tryAcquire: pid });
const nobodyNamed = named(null);

/** flock(1) holding the lock until the test ends; writes nothing. */
async function holdWithFlock(t, workspace) {
  const peer = startChild(t, null, ['-n', lockPathIn(workspace), '-c', 'echo \'{"event":"locked"}\'; read line'], {
    command: 'flock',
  });
  await peer.next('locked');
  return peer;
}

test('a live flock(1) holder is named by a record that names it, and only while it holds', { skip: noFlock }, async (t) => {
  const workspace = workspaceWithFile(t);
  const peer = await holdWithFlock(t, workspace);
  writeRecord(workspace, peer.pid);
  assert.deepEqual(namedHolders(workspace), named(peer.pid));
  // Again, through the descriptor remembered from the first answer.
  assert.deepEqual(namedHolders(workspace), named(peer.pid));

  // Another live process that has the file open but holds nothing: this one.
  const reader = fs.openSync(lockPathIn(workspace), 'r');
  t.after(() => fs.closeSync(reader));
  writeRecord(workspace, process.pid);
  assert.deepEqual(namedHolders(workspace), nobodyNamed);
});

/**
 * A Python holder: locks the file (argv[1]) with fcntl.flock, writes a
 * record naming its pid with the prompt argv[2] and no mark, says
 * `locked` with its pid (as its own pid namespace numbers it), and holds
 * until its stdin ends.
 */
const PYTHON_HOLDER = `
import datetime, fcntl, json, os, sys
f = open(sys.argv[1], 'r+')
fcntl.flock(f, fcntl.LOCK_EX)
started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
f.write(json.dumps({'pid': os.getpid(), 'started': started, 'prompt': sys.argv[2]}, indent=2))
f.flush()
print(json.dumps({'event': 'locked', 'pid': os.getpid()}), flush=True)
sys.stdin.readline()
`;

test("a live holder through Python's fcntl.flock is named by the record it wrote", { skip: noPython }, async (t) => {
  const workspace = workspaceWithFile(t);
  const peer = startChild(t, null, ['-c', PYTHON_HOLDER, lockPathIn(workspace), 'python'], { command: 'python3' });
  await peer.next('locked');
  assert.deepEqual(namedHolders(workspace), named(peer.pid));
});

test('a live Rust holder (the reference\'s way) is named', { skip: noRust }, async (t) => {
  const workspace = workspaceWithFile(t);
  const peer = startPeer(t);
  await peer.ask('held', 'hold', lockPathIn(workspace), 'from rust');
  assert.deepEqual(namedHolders(workspace), named(peer.pid));
  await peer.ask('released', 'release');
  assert.equal(LoopLock.status(workspace).locked, false);
});

test('a pid that started after the record was written is not its writer: no holder', { skip: noFlock }, async (t) => {
  const workspace = workspaceWithFile(t);
  // A record from a minute ago, naming a process started just now that
  // holds the lock: the pid of a holder that died, reused.
  const peer = await holdWithFlock(t, workspace);
  writeRecord(workspace, peer.pid, new Date(Date.now() - 60_000));
  assert.deepEqual(namedHolders(workspace), nobodyNamed);
  // The same holder with a record written after it started is named.
  writeRecord(workspace, peer.pid);
  assert.deepEqual(namedHolders(workspace), named(peer.pid));
});

// Every platform: this process holds the lock through the binding, which
// writes no record and no mark, as a holder that locks with plain flock()
// or LockFileEx does.
test('a record stamped more than 2 s before the process it names started names no one; a later one names it', (t) => {
  const workspace = workspaceWithFile(t);
  const binding = native();
  const handle = binding.open(lockPathIn(workspace), false);
  t.after(() => binding.close(handle));
  assert.equal(binding.tryLock(handle, false), true);
  const processStarted = Date.now() - process.uptime() * 1000;
  writeRecord(workspace, process.pid, new Date(processStarted - 60_000));
  assert.deepEqual(namedHolders(workspace), nobodyNamed);
  writeRecord(workspace, process.pid, new Date(processStarted + 1000));
  assert.deepEqual(namedHolders(workspace), named(process.pid));
});

// flock(1) and the Rust reference's children inherit the locked descriptor:
// the lock belongs to the open file description, so whoever still has it
// open holds the lock. The kernel lists the lock under the pid that called
// flock(), whether or not that process still has it open.
test('a child that inherited the locked descriptor is named; the parent that closed its copy is not', { skip: noPython }, async (t) => {
  const workspace = workspaceWithFile(t);
  const script = `
import fcntl, json, subprocess, sys
f = open(sys.argv[1], 'r+')
fcntl.flock(f, fcntl.LOCK_EX)
child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.readline()'], stdin=subprocess.PIPE, pass_fds=[f.fileno()])
f.close()
print(json.dumps({'event': 'handed', 'child': child.pid}), flush=True)
sys.stdin.readline()
child.stdin.close()
child.wait()
`;
  const parent = startChild(t, null, ['-c', script, lockPathIn(workspace)], { command: 'python3' });
  const { child } = await parent.next('handed');
  writeRecord(workspace, child);
  assert.deepEqual(namedHolders(workspace), named(child));
  writeRecord(workspace, parent.pid);
  assert.deepEqual(namedHolders(workspace), nobodyNamed);
  parent.send('');
  await parent.exited;
  assert.equal(LoopLock.status(workspace).locked, false, 'the child held the lock to its exit');
});

// A holder in its own pid namespace writes its pid as that namespace
// numbers it (1 here): in this namespace that pid is another process.
test('a holder in another pid namespace, whose record names its own pid there: no holder', { skip: noPidNamespace }, async (t) => {
  const workspace = workspaceWithFile(t);
  const args = ['--pid', '--fork', '--mount-proc', '--kill-child', 'python3', '-c', PYTHON_HOLDER, lockPathIn(workspace), 'namespaced'];
  const peer = startChild(t, null, args, { command: 'unshare' });
  const { pid } = await peer.next('locked');
  assert.equal(LoopLock.readExisting(workspace).pid, pid, 'the record names the namespace\'s pid');
  assert.notEqual(pid, peer.pid);
  assert.deepEqual(namedHolders(workspace), nobodyNamed);
});

// Another user's process keeps its /proc/<pid>/fd from us (EACCES): then
// /proc/locks answers, which still names the holder and only the holder.
test("another user's holder, whose descriptors cannot be read, is still named, and only it", { skip: noOtherUser }, async (t) => {
  const workspace = workspaceWithFile(t);
  fs.chmodSync(workspace, 0o777);
  const peer = await holdWithFlock(t, workspace);
  const statusAsNobody = () => {
    const script = `
const fs = require('node:fs');
let readable = true;
try { fs.readdirSync('/proc/${peer.pid}/fd'); } catch (error) { if (error.code !== 'EACCES') throw error; readable = false; }
const { LoopLock } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
console.log(JSON.stringify({ readable, holder: LoopLock.status(${JSON.stringify(workspace)}).holder?.pid ?? null }));
`;
    const run = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    return JSON.parse(run.stdout);
  };
  writeRecord(workspace, peer.pid);
  assert.deepEqual(statusAsNobody(), { readable: false, holder: peer.pid });
  // A live process of that user that does not hold the lock: this one.
  writeRecord(workspace, process.pid);
  assert.deepEqual(statusAsNobody(), { readable: false, holder: null });
});
