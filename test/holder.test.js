'use strict';
// status().holder and AlreadyLockedError.holder name only the process that
// holds the lock at that moment: never the last holder while a new one has
// locked but not yet written, never a record under a holder that writes
// none (flock(1)), never a holder that died. Callers signal that pid.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { LoopLock, AlreadyLockedError } = require('../dist');
const { native } = require('../dist/native.js');
const { FIXTURES, isAlive, lockPathIn, makeWorkspace, startChild } = require('./helpers');

const hasFlock = spawnSync('flock', ['--version']).status === 0;
const noFlock = hasFlock ? false : 'util-linux flock is not installed';
const noPidNamespace =
  hasFlock && spawnSync('unshare', ['--pid', '--fork', 'true']).status === 0
    ? false
    : 'needs util-linux flock and unshare --pid (root or user namespaces)';
const noPython =
  process.platform === 'linux' && spawnSync('python3', ['--version']).status === 0 ? false : 'needs Linux and python3';


/** A record as loop-lock and the reference write it, naming `pid`. */
function writeRecord(workspace, pid, prompt) {
  fs.mkdirSync(path.dirname(lockPathIn(workspace)), { recursive: true });
  const record = { pid, started: '2026-11-29T08:00:00.000Z', prompt };
  fs.writeFileSync(lockPathIn(workspace), JSON.stringify(record, null, 2));
}

/** Holds the lock with flock(1), which writes nothing, until the test ends. */
async function holdWithFlock(t, workspace) {
  const peer = startChild(t, null, ['-n', lockPathIn(workspace), '-c', 'echo \'{"event":"locked"}\'; read line'], {
    command: 'flock',
  });
  await peer.next('locked');
  return peer;
}

function holderOfTryAcquire(workspace) {
  try {
    LoopLock.tryAcquire(workspace, 'loser').release();
  } catch (error) {
    if (error instanceof AlreadyLockedError) return error.holder;
    throw error;
  }
  return undefined;
}

test('a process that keeps taking and releasing the lock is never named holder while it holds nothing', async (t) => {
  if (process.platform === 'win32') {
    return t.skip('Windows shows no lock\'s owner: a live past holder is named until the new one writes (see README)');
  }
  const workspace = makeWorkspace(t);
  LoopLock.tryAcquire(workspace, 'R').release();
  const writer = startChild(t, 'cycle.js', [workspace, 'W', '3000']);
  await writer.next('started');
  let answers = 0;
  let namedSelf = 0;
  let namedWriter = 0;
  const deadline = Date.now() + 2500;
  while (Date.now() < deadline) {
    try {
      LoopLock.tryAcquire(workspace, 'R').release();
    } catch (error) {
      if (!(error instanceof AlreadyLockedError)) throw error;
    }
    // This process holds nothing now: a holder naming it is the record it
    // left, under the writer that has locked but not yet written.
    const { holder } = LoopLock.status(workspace);
    const loser = holderOfTryAcquire(workspace);
    for (const answer of [holder, loser]) {
      if (answer === undefined || answer === null) continue;
      answers++;
      if (answer.pid === process.pid) namedSelf++;
      else if (answer.pid === writer.pid && answer.prompt === 'W') namedWriter++;
    }
  }
  const { held } = await writer.next('done');
  assert.ok(held > 100, `the writer took the lock ${held} times`);
  assert.ok(namedWriter > 0, 'the writer was named while it held the lock');
  assert.equal(namedSelf, 0, `${namedSelf} of ${answers} answers named this process, which held nothing`);
  assert.equal(answers, namedWriter, 'every holder named was the writer');
});

test('a record under a flock(1) holder, which writes none, names no holder', { skip: noFlock }, async (t) => {
  const workspace = makeWorkspace(t);
  // A live process that does not hold the lock: this one.
  writeRecord(workspace, process.pid, 'left behind');
  await holdWithFlock(t, workspace);

  assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
  assert.equal(holderOfTryAcquire(workspace), null);
  assert.equal(LoopLock.readExisting(workspace)?.pid, process.pid, 'the record itself is still there to read');
});

// A child takes the lock, is named while alive, then is SIGKILLed: its
// record stays in the file, its pid is dead. Returns that pid.
async function leaveKilledHoldersRecord(t, workspace) {
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt: 'killed', mode: 'try' })]);
  const { pid } = await holder.next('locked');
  assert.equal(LoopLock.status(workspace).holder?.pid, pid, 'a live holder is named');
  holder.child.kill('SIGKILL');
  await holder.exited;
  assert.equal(isAlive(pid), false);
  return pid;
}

test('the record of a SIGKILLed holder names no one once a foreign holder has the lock', { skip: noFlock }, async (t) => {
  const workspace = makeWorkspace(t);
  const pid = await leaveKilledHoldersRecord(t, workspace);
  assert.equal(LoopLock.status(workspace).locked, false);

  await holdWithFlock(t, workspace);
  assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
  assert.equal(holderOfTryAcquire(workspace), null);
});

test('a holder in this very process is named, by status and by a losing tryAcquire', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'mine');
  t.after(() => guard.release());
  assert.deepEqual(LoopLock.status(workspace).holder, guard.metadata);
  assert.deepEqual(holderOfTryAcquire(workspace), guard.metadata);
});

// The check every platform has: a record whose pid is dead names no one,
// even while the lock is held (here by this process, through the binding,
// which writes nothing), and a live holder is named.
test('a live holder is named, and a dead one\'s record under a holder that writes none is not', async (t) => {
  const workspace = makeWorkspace(t);
  const pid = await leaveKilledHoldersRecord(t, workspace);

  const binding = native();
  const handle = binding.open(lockPathIn(workspace), false);
  t.after(() => binding.close(handle));
  assert.equal(binding.tryLock(handle, false), true, 'the dead holder left the lock free');
  assert.equal(LoopLock.readExisting(workspace)?.pid, pid, 'the dead holder\'s record is still there');
  assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
  assert.equal(holderOfTryAcquire(workspace), null);
});

// In a new pid namespace whose /proc is still the parent's, /proc/locks
// lists pids this process cannot use, as on a system without it (macOS):
// then only a dead pid is ruled out.
test('where the kernel cannot say who holds the lock, a live holder is named and a dead one is not', { skip: noPidNamespace }, (t) => {
  const workspace = makeWorkspace(t);
  const script = `
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const readline = require('node:readline');
const { LoopLock } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
const workspace = ${JSON.stringify(workspace)};
const lockPath = ${JSON.stringify(lockPathIn(workspace))};
const holder = spawn(process.execPath, [${JSON.stringify(path.join(FIXTURES, 'holder.js'))}, JSON.stringify({ workspace, prompt: 'in namespace', mode: 'try' })]);
const lines = readline.createInterface({ input: holder.stdout });
lines.on('line', (line) => {
  const message = JSON.parse(line);
  if (message.event !== 'locked') return;
  const live = LoopLock.status(workspace).holder?.pid === holder.pid;
  holder.kill('SIGKILL');
  holder.on('exit', () => {
    // The dead holder's record, under a holder that writes none.
    const flock = spawnSync('flock', ['-n', lockPath, process.execPath, '-p',
      'JSON.stringify(require(' + JSON.stringify(${JSON.stringify(path.join(__dirname, '..', 'dist'))}) + ').LoopLock.status(' + JSON.stringify(workspace) + '))'], { encoding: 'utf8' });
    const dead = JSON.parse(flock.stdout);
    console.log(JSON.stringify({ inOwnProc: fs.readlinkSync('/proc/self') === String(process.pid), live, dead }));
  });
});`;
  const run = spawnSync('unshare', ['--pid', '--fork', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.equal(result.inOwnProc, false, '/proc is the parent namespace\'s');
  assert.equal(result.live, true, 'a live holder is named');
  assert.deepEqual(result.dead, { locked: true, holder: null });
});

// The mark a holder takes after writing its record (an OFD lock far past
// it), which lets readers name it without reading /proc/locks, must go
// before the lock does: a mark that outlived its lock would name its
// process as the next holder's.
test('a holder marks its record while it holds the lock, and only then', { skip: process.platform !== 'linux' }, async (t) => {
  const workspace = makeWorkspace(t);
  const marksOn = (file) => {
    const { ino } = fs.statSync(file);
    return fs
      .readFileSync('/proc/locks', 'utf8')
      .split('\n')
      .filter((line) => {
        const fields = line.trim().split(/\s+/);
        return fields[1] === 'OFDLCK' && fields[3] === 'WRITE' && fields[5]?.endsWith(`:${ino}`);
      }).length;
  };
  const guard = LoopLock.tryAcquire(workspace, 'marked');
  assert.equal(marksOn(guard.lockPath), 1);
  guard.release();
  assert.equal(marksOn(guard.lockPath), 0);
  const blocking = LoopLock.acquireBlocking(workspace, 'marked too');
  assert.equal(marksOn(blocking.lockPath), 1);
  // A wait that takes the lock on the event loop marks it there.
  const waiting = LoopLock.acquire(workspace, 'waited');
  blocking.release();
  const waited = await waiting;
  assert.equal(marksOn(waited.lockPath), 1);
  waited.release();
  assert.equal(marksOn(waited.lockPath), 0);
});

// A reader reads the record and then the holder's mark: the mark names the
// process that holds the lock, and a record naming any other is not its.
test('a record written over a marked holder\'s, naming another live process, names no one', { skip: process.platform !== 'linux' && 'marks are Linux OFD locks' }, (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'marked');
  t.after(() => guard.release());
  const { started } = guard.metadata;
  const writeRecordOf = (pid) =>
    fs.writeFileSync(lockPathIn(workspace), JSON.stringify({ pid, started: started.toISOString(), prompt: 'marked' }, null, 2));
  // The parent is alive and holds nothing here.
  writeRecordOf(process.ppid);
  assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
  assert.equal(holderOfTryAcquire(workspace), null);
  writeRecordOf(process.pid);
  assert.deepEqual(LoopLock.status(workspace).holder, guard.metadata);
  assert.deepEqual(holderOfTryAcquire(workspace), guard.metadata);
});

// A POSIX record lock over the whole file (an fcntl() user's, taken
// first) covers the byte of the holder's mark, which then cannot be made:
// the holder is confirmed the way an unmarked one is.
test('a holder that could not mark, under a foreign fcntl() lock over the whole file, is named', { skip: noPython }, async (t) => {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.dirname(lockPathIn(workspace)));
  fs.writeFileSync(lockPathIn(workspace), '');
  const script = [
    'import fcntl, os, sys',
    'fd = os.open(sys.argv[1], os.O_RDONLY)',
    'fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)',
    'print("{\\"event\\":\\"locked\\"}", flush=True)',
    'sys.stdin.readline()',
  ].join('\n');
  const peer = startChild(t, null, ['-c', script, lockPathIn(workspace)], { command: 'python3' });
  await peer.next('locked');
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt: 'behind a POSIX lock', mode: 'try' })]);
  const { pid } = await holder.next('locked');
  const { holder: named } = LoopLock.status(workspace);
  assert.equal(named?.pid, pid);
  assert.equal(named?.prompt, 'behind a POSIX lock');
  assert.equal(holderOfTryAcquire(workspace)?.pid, pid);
});
