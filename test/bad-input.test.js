'use strict';
// Bad arguments and hostile file systems: a TypeError for a wrong type, a
// typed LockError naming the path for everything else, never a hang, and
// never a changed byte outside the lock file.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const util = require('node:util');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { AlreadyLockedError, LockError, LockParseError, LoopLock, MAX_METADATA_BYTES } = require('../dist');
const { native } = require('../dist/native.js');
const { FIXTURES, UNDER_WINE, makeWorkspace } = require('./helpers');

const lockPathIn = (workspace) => path.join(workspace, '.ralph', 'loop.lock');

// Every call, with the workspace and options in the positions it takes them.
const calls = {
  tryAcquire: (workspace, options) => LoopLock.tryAcquire(workspace, 'p', options),
  acquireBlocking: (workspace, options) => LoopLock.acquireBlocking(workspace, 'p', options),
  readExisting: (workspace, options) => LoopLock.readExisting(workspace, options),
  isLocked: (workspace, options) => LoopLock.isLocked(workspace, options),
  status: (workspace, options) => LoopLock.status(workspace, options),
};

/** Asserts `fn` throws a LockError with `code` whose message names `where`. */
function assertLockError(fn, code, where) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof LockError, `expected a LockError, got ${error?.name}: ${error?.message}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(where), `message names ${where}: ${error.message}`);
    return true;
  });
}

/**
 * Runs LoopLock steps in a child (see fixtures/attempt.js), optionally
 * wrapped by `prefix`, running `script` (a copy of attempt.js elsewhere).
 */
function attempt(workspace, steps, prefix = [], script = path.join(FIXTURES, 'attempt.js'), env = process.env) {
  const input = JSON.stringify({ workspace, steps });
  const [command, ...args] = [...prefix, process.execPath, script, input];
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, env });
  assert.equal(run.signal, null, `the child did not finish: ${run.stderr}`);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/** Asserts an attempt outcome is a LockError with `code` naming `where`. */
function assertOutcome(outcome, code, where) {
  assert.equal(outcome.ok, false, JSON.stringify(outcome));
  assert.equal(outcome.isLockError, true, JSON.stringify(outcome));
  assert.equal(outcome.code, code, outcome.message);
  assert.ok(outcome.message.includes(where), `message names ${where}: ${outcome.message}`);
}

/**
 * A file where a directory should be is ENOTDIR. Windows reports it as a
 * missing path (ERROR_PATH_NOT_FOUND), as Node's fs does there: taking the
 * lock fails with ENOENT, and the readers find no lock file.
 */
function assertNotADirectory(name, call, workspace, where) {
  if (process.platform !== 'win32') return assertLockError(() => call(workspace), 'ENOTDIR', where);
  if (name === 'tryAcquire' || name === 'acquireBlocking') return assertLockError(() => call(workspace), 'ENOENT', where);
  const found = call(workspace);
  assert.ok(found === null || found === false || found.locked === false, `${name} finds no lock`);
}

const canUnshare =
  spawnSync('unshare', ['-r', '-m', 'sh', '-c', 'true'], { stdio: 'ignore' }).status === 0
    ? false
    : 'unshare -r -m (user and mount namespaces) is not available';
const canDropPrivileges =
  process.getuid?.() === 0 && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'needs root and setpriv to run a child as nobody';

for (const [name, call] of Object.entries(calls)) {
  test(`${name}: a workspace of the wrong type is a TypeError`, () => {
    for (const workspace of [undefined, null, 42, {}, ['/tmp'], Buffer.from('/tmp'), Symbol('x')]) {
      assert.throws(() => call(workspace), TypeError, String(workspace?.toString?.() ?? workspace));
    }
  });

  test(`${name}: an empty workspace or lockFile is a TypeError`, (t) => {
    assert.throws(() => call(''), TypeError);
    assert.throws(() => call(makeWorkspace(t), { lockFile: '' }), TypeError);
  });

  test(`${name}: a non-file URL is a TypeError`, () => {
    assert.throws(() => call(new URL('https://example.com/workspace')), TypeError);
  });

  test(`${name}: options or lockFile of the wrong type is a TypeError`, (t) => {
    const workspace = makeWorkspace(t);
    for (const options of ['opts', 42, null, true]) {
      assert.throws(() => call(workspace, options), TypeError, String(options));
    }
    for (const lockFile of [42, null, {}, true]) {
      assert.throws(() => call(workspace, { lockFile }), TypeError, String(lockFile));
    }
    assert.deepEqual(fs.readdirSync(workspace), []);
  });

  if (name === 'readExisting') {
    test('readExisting: a strict option that is not a boolean is a TypeError', (t) => {
      const workspace = makeWorkspace(t);
      for (const strict of ['yes', 1, null, {}]) {
        assert.throws(() => call(workspace, { strict }), TypeError, String(strict));
      }
    });
  }

  test(`${name}: a NUL byte in the path is LockError EINVAL`, (t) => {
    const workspace = makeWorkspace(t);
    assertLockError(() => call(`${workspace}\0evil`), 'EINVAL', workspace);
    assertLockError(() => call(workspace, { lockFile: 'a\0b' }), 'EINVAL', workspace);
    assert.deepEqual(fs.readdirSync(workspace), []);
  });

  test(`${name}: a path longer than PATH_MAX, or with a name longer than NAME_MAX, is LockError ENAMETOOLONG`, (t) => {
    if (process.platform === 'win32') {
      return t.skip('Windows takes \\\\?\\ paths of up to 32,767 characters; under Wine mkdir stops at Linux PATH_MAX with EIO');
    }
    const workspace = makeWorkspace(t);
    const deep = path.join(workspace, ...Array.from({ length: 40 }, () => 'd'.repeat(120)));
    const wide = path.join(workspace, 'n'.repeat(300));
    for (const options of [undefined, { networkFilesystem: 'allow' }]) {
      assertLockError(() => call(deep, options), 'ENAMETOOLONG', workspace);
      assertLockError(() => call(wide, options), 'ENAMETOOLONG', workspace);
    }
    assert.deepEqual(fs.readdirSync(workspace), []);
  });

  test(`${name}: a workspace that is a regular file is LockError ENOTDIR, and the file is unchanged`, (t) => {
    const dir = makeWorkspace(t);
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, 'precious');
    assertNotADirectory(name, call, file, file);
    assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
  });

  test(`${name}: a symlink at the lock path is LockError ELOOP, and its target is untouched`, (t) => {
    if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
    const workspace = makeWorkspace(t);
    const outside = makeWorkspace(t);
    const target = path.join(outside, 'target');
    fs.writeFileSync(target, 'do not touch\n');
    fs.utimesSync(target, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    const before = fs.statSync(target);
    fs.mkdirSync(path.join(workspace, '.ralph'));
    fs.symlinkSync(target, lockPathIn(workspace));

    assertLockError(() => call(workspace), 'ELOOP', lockPathIn(workspace));
    const after = fs.statSync(target);
    assert.equal(fs.readFileSync(target, 'utf8'), 'do not touch\n');
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.size, before.size);
    assert.ok(fs.lstatSync(lockPathIn(workspace)).isSymbolicLink(), 'the symlink itself stays');
  });

  test(`${name}: a dangling symlink at the lock path is LockError ELOOP and creates nothing`, (t) => {
    if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
    const workspace = makeWorkspace(t);
    const outside = makeWorkspace(t);
    fs.mkdirSync(path.join(workspace, '.ralph'));
    fs.symlinkSync(path.join(outside, 'would-be-created'), lockPathIn(workspace));
    assertLockError(() => call(workspace), 'ELOOP', lockPathIn(workspace));
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  test(`${name}: a directory at the lock path is LockError EISDIR`, (t) => {
    const workspace = makeWorkspace(t);
    fs.mkdirSync(lockPathIn(workspace), { recursive: true });
    assertLockError(() => call(workspace), 'EISDIR', lockPathIn(workspace));
  });
}

test('a FIFO at the lock path is LockError EINVAL for every call, without hanging', (t) => {
  if (process.platform === 'win32') return t.skip('Windows has no FIFOs in the file system (mkfifo)');
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  const made = spawnSync('mkfifo', [lockPathIn(workspace)]);
  assert.equal(made.status, 0, 'mkfifo');
  // In a child with a timeout: a blocking open() of a FIFO would hang the
  // test process itself, beyond the reach of any test timeout.
  const outcomes = attempt(
    workspace,
    Object.keys(calls).map((op) => ({ op, prompt: 'p' })),
  );
  for (const outcome of outcomes) assertOutcome(outcome, 'EINVAL', lockPathIn(workspace));
  assert.ok(fs.lstatSync(lockPathIn(workspace)).isFIFO());
});

test('a unix socket at the lock path is LockError EINVAL for every call, as a FIFO is', async (t) => {
  if (process.platform === 'win32') return t.skip("Node on Windows listens on named pipes, not on a socket file at a path");
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  const server = net.createServer();
  await new Promise((resolve, reject) => server.listen(lockPathIn(workspace), resolve).on('error', reject));
  t.after(() => server.close());
  for (const call of Object.values(calls)) assertLockError(() => call(workspace), 'EINVAL', lockPathIn(workspace));
  await assert.rejects(LoopLock.acquire(workspace, 'p'), (error) => error instanceof LockError && error.code === 'EINVAL');
  assert.ok(fs.lstatSync(lockPathIn(workspace)).isSocket());
});

test('a character device at the lock path is LockError EINVAL', (t) => {
  if (process.platform === 'win32') return t.skip('/dev/null is POSIX (Windows devices such as NUL are not lock paths)');
  const workspace = makeWorkspace(t);
  assertLockError(() => LoopLock.tryAcquire(workspace, 'p', { lockFile: '/dev/null' }), 'EINVAL', '/dev/null');
  assertLockError(() => LoopLock.isLocked(workspace, { lockFile: '/dev/zero' }), 'EINVAL', '/dev/zero');
});

test('a parent component that is a file is LockError ENOTDIR naming the path', (t) => {
  const workspace = makeWorkspace(t);
  fs.writeFileSync(path.join(workspace, '.ralph'), 'a file where the directory goes');
  for (const [name, call] of Object.entries(calls)) assertNotADirectory(name, call, workspace, lockPathIn(workspace));
  assert.equal(fs.readFileSync(path.join(workspace, '.ralph'), 'utf8'), 'a file where the directory goes');
});

test('a missing workspace is created for tryAcquire but not by readers', (t) => {
  const parent = makeWorkspace(t);
  const workspace = path.join(parent, 'not', 'yet');
  assert.equal(LoopLock.isLocked(workspace), false);
  assert.equal(LoopLock.readExisting(workspace), null);
  assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });
  assert.deepEqual(fs.readdirSync(parent), []);
  LoopLock.tryAcquire(workspace, 'creates').release();
  assert.ok(fs.statSync(lockPathIn(workspace)).isFile());
});

/**
 * attempt.js and what it loads, copied where any user can read them: the
 * checkout may sit under a directory only its owner can enter (/root), and
 * the child runs as nobody. The copy is laid out as an installed package:
 * dist/, the addon this process loaded as build/Release, node-gyp-build
 * beside it. Returns the copy of attempt.js and the environment to run it in.
 */
function readableByAll(t) {
  LoopLock.isLocked(makeWorkspace(t)); // loads the addon
  const addon = fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map((line) => line.split(/\s+/)[5])
    .find((file) => file !== undefined && file.endsWith('.node'));
  assert.ok(addon, 'the addon is not mapped');
  const dist = path.join(__dirname, '..', 'dist');
  const gypBuild = path.dirname(require.resolve('node-gyp-build/package.json', { paths: [dist] }));
  const copy = makeWorkspace(t);
  const pkg = path.join(copy, 'node_modules', 'loop-lock');
  fs.cpSync(dist, path.join(pkg, 'dist'), { recursive: true });
  fs.cpSync(path.join(__dirname, '..', 'package.json'), path.join(pkg, 'package.json'));
  fs.cpSync(addon, path.join(pkg, 'build', 'Release', path.basename(addon)));
  fs.cpSync(gypBuild, path.join(copy, 'node_modules', 'node-gyp-build'), { recursive: true });
  fs.cpSync(path.join(FIXTURES, 'attempt.js'), path.join(pkg, 'test', 'fixtures', 'attempt.js'));
  fs.chmodSync(copy, 0o755);
  const env = { ...process.env };
  delete env.LOOP_LOCK_PREBUILD;
  return { script: path.join(pkg, 'test', 'fixtures', 'attempt.js'), env };
}

test('without permission, every call is LockError EACCES naming the path', { skip: canDropPrivileges }, (t) => {
  const root = makeWorkspace(t);
  fs.chmodSync(root, 0o755);
  const setpriv = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  const execPathRun = spawnSync(setpriv[0], [...setpriv.slice(1), process.execPath, '-e', ''], { stdio: 'ignore' });
  if (execPathRun.status !== 0) return t.skip(`nobody cannot run ${process.execPath}`);
  const { script, env } = readableByAll(t);
  const attemptAsNobody = (workspace, steps) => attempt(workspace, steps, setpriv, script, env);

  // No .ralph yet: the directory cannot be created.
  const bare = path.join(root, 'bare');
  fs.mkdirSync(bare, { mode: 0o755 });
  const [create] = attemptAsNobody(bare, [{ op: 'tryAcquire', prompt: 'p' }]);
  assertOutcome(create, 'EACCES', bare);
  assert.deepEqual(fs.readdirSync(bare), []);

  // .ralph exists but is not writable: the file cannot be created.
  const noFile = path.join(root, 'no-file');
  fs.mkdirSync(path.join(noFile, '.ralph'), { recursive: true, mode: 0o755 });
  const [createFile] = attemptAsNobody(noFile, [{ op: 'tryAcquire', prompt: 'p' }]);
  assertOutcome(createFile, 'EACCES', lockPathIn(noFile));

  // The file exists, readable by all but writable by root only.
  const readOnly = path.join(root, 'read-only');
  LoopLock.tryAcquire(readOnly, 'root was here').release();
  fs.chmodSync(lockPathIn(readOnly), 0o644);
  const before = fs.readFileSync(lockPathIn(readOnly));
  const [open, blocking, read] = attemptAsNobody(readOnly, [
    { op: 'tryAcquire', prompt: 'p' },
    { op: 'acquireBlocking', prompt: 'p' },
    { op: 'readExisting' },
  ]);
  assertOutcome(open, 'EACCES', lockPathIn(readOnly));
  assertOutcome(blocking, 'EACCES', lockPathIn(readOnly));
  assert.equal(read.ok, true, 'reading needs only read permission');
  assert.equal(read.result.prompt, 'root was here');
  assert.deepEqual(fs.readFileSync(lockPathIn(readOnly)), before);

  // The file is not even readable.
  fs.chmodSync(lockPathIn(readOnly), 0o600);
  const probes = attemptAsNobody(readOnly, [{ op: 'readExisting' }, { op: 'isLocked' }, { op: 'status' }]);
  for (const outcome of probes) assertOutcome(outcome, 'EACCES', lockPathIn(readOnly));
});

test('on a read-only file system, tryAcquire is LockError EROFS naming the path', { skip: canUnshare }, (t) => {
  const mountPoint = makeWorkspace(t);
  const script = path.join(FIXTURES, 'attempt.js');
  const steps = JSON.stringify({
    workspace: mountPoint,
    steps: [{ op: 'tryAcquire', prompt: 'p' }, { op: 'acquireBlocking', prompt: 'p' }, { op: 'isLocked' }, { op: 'readExisting' }],
  });
  const inNamespace = (setup) =>
    spawnSync('unshare', ['-r', '-m', 'sh', '-c', `${setup} && exec "$0" "$1" "$2"`, process.execPath, script, steps], {
      encoding: 'utf8',
      timeout: 30_000,
    });

  // An empty read-only file system: .ralph cannot be created.
  const empty = inNamespace(`mount -t tmpfs -o ro,size=64k tmpfs '${mountPoint}'`);
  assert.equal(empty.status, 0, empty.stderr);
  const [create, createBlocking, probe, read] = JSON.parse(empty.stdout);
  assertOutcome(create, 'EROFS', mountPoint);
  assertOutcome(createBlocking, 'EROFS', mountPoint);
  assert.deepEqual(probe, { ok: true, result: false });
  assert.deepEqual(read, { ok: true, result: null });

  // A lock file made earlier, then the mount made read-only (a bind remount,
  // which an unprivileged user namespace may do, unlike a plain remount).
  const existing = inNamespace(
    `mount -t tmpfs -o size=64k tmpfs '${mountPoint}' && mkdir '${mountPoint}/.ralph' && ` +
      `printf '{"pid":1,"started":"2024-05-06T07:08:09Z","prompt":"old"}' > '${lockPathIn(mountPoint)}' && ` +
      `mount -o remount,bind,ro '${mountPoint}'`,
  );
  assert.equal(existing.status, 0, existing.stderr);
  const [open, openBlocking, probeExisting, readExisting] = JSON.parse(existing.stdout);
  assertOutcome(open, 'EROFS', lockPathIn(mountPoint));
  assertOutcome(openBlocking, 'EROFS', lockPathIn(mountPoint));
  assert.deepEqual(probeExisting, { ok: true, result: false });
  assert.equal(readExisting.result.prompt, 'old');
});

test('on a full file system, a large prompt is LockError ENOSPC, leaves no torn record and no lock held', { skip: canUnshare }, (t) => {
  const mountPoint = makeWorkspace(t);
  const script = path.join(FIXTURES, 'attempt.js');
  const steps = JSON.stringify({
    workspace: mountPoint,
    steps: [
      { op: 'tryAcquire', promptLength: 512 * 1024 },
      { op: 'isLocked' },
      { op: 'readExisting' },
      { op: 'tryAcquire', prompt: 'small' },
    ],
  });
  const run = spawnSync(
    'unshare',
    ['-r', '-m', 'sh', '-c', `mount -t tmpfs -o size=8k tmpfs '${mountPoint}' && exec "$0" "$1" "$2"`, process.execPath, script, steps],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  const [full, probe, record, small] = JSON.parse(run.stdout);
  assertOutcome(full, 'ENOSPC', lockPathIn(mountPoint));
  assert.equal(full.syscall, 'pwrite');
  assert.deepEqual(probe, { ok: true, result: false }, 'the failed acquire released the lock');
  assert.deepEqual(record, { ok: true, result: null }, 'the partial record was truncated away');
  assert.equal(small.ok, true, 'a record that fits can still be written');
});

const corruptFiles = {
  garbage: Buffer.from('this is not json at all'),
  'invalid UTF-8': Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
  'binary zeros': Buffer.alloc(64),
  'truncated JSON': Buffer.from('{\n  "pid": 123,\n  "started": "2024-05-06T07:'),
  'more than MAX_METADATA_BYTES': Buffer.from(
    JSON.stringify({ pid: 1, started: '2024-05-06T07:08:09Z', prompt: 'x'.repeat(MAX_METADATA_BYTES) }),
  ),
};

for (const [label, bytes] of Object.entries(corruptFiles)) {
  test(`a lock file of ${label}: readExisting is null (strictly a LockParseError), status holder is null while held, tryAcquire rewrites it whole`, (t) => {
    const workspace = makeWorkspace(t);
    fs.mkdirSync(path.join(workspace, '.ralph'));
    fs.writeFileSync(lockPathIn(workspace), bytes);

    assert.equal(LoopLock.readExisting(workspace), null);
    assert.throws(
      () => LoopLock.readExisting(workspace, { strict: true }),
      (error) =>
        error instanceof LockParseError && error.code === 'EPARSE' && error.message.includes(lockPathIn(workspace)),
    );
    assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });

    const guard = LoopLock.tryAcquire(workspace, 'fresh start');
    try {
      assert.equal(
        fs.readFileSync(lockPathIn(workspace), 'utf8'),
        `{\n  "pid": ${process.pid},\n  "started": "${guard.metadata.started.toISOString()}",\n  "prompt": "fresh start"\n}`,
      );
      // Held, with the corrupt bytes back in place (as a foreign writer might leave them).
      fs.writeFileSync(lockPathIn(workspace), bytes);
      assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
      assert.throws(
        () => LoopLock.tryAcquire(workspace, 'second'),
        (error) => error instanceof AlreadyLockedError && error.holder === null,
      );
      assert.deepEqual(fs.readFileSync(lockPathIn(workspace)), bytes, 'a losing attempt writes nothing');
    } finally {
      guard.release();
    }
  });
}

// lib/ always passes the binding what it declares, but a native boundary
// must hold without it: a wrong type once aborted the process, a negative
// size wrapped around to "read everything".
test('the internal binding refuses arguments of the wrong type (TypeError) or size (RangeError) without aborting', (t) => {
  const dir = makeWorkspace(t);
  const file = path.join(dir, 'three-mebibytes');
  fs.writeFileSync(file, 'x'.repeat(3 * 1024 * 1024));
  const typeErrors = [
    'b.open(123, true)',
    `b.open(${JSON.stringify(file)}, 1)`,
    'b.open()',
    "b.tryLock('x', false)",
    "b.tryLock(h, 'yes')",
    "b.lockBlocking('x')",
    `b.claim('x', 1, '""')`,
    `b.claim(h, '1', '""')`,
    'b.claim(h, 1, 5)',
    "b.read('x', 5)",
    "b.read(h, '5')",
    'b.probe(5)',
    'b.probe()',
    "b.heldBy('x', 1)",
    "b.heldBy(h, '1')",
    "b.heldBy(h, 1, '0')",
    'b.heldBy(h, 1)',
    "b.identity('x')",
    'b.fileKey({})',
    'b.filesystem(null)',
    "b.close('x')",
  ];
  // A test build's own export (see native/binding.cc), absent from a release build.
  if (native().formatTimestamp !== undefined) typeErrors.push("b.formatTimestamp('x')");
  // The event-loop waiter, absent where the addon leaves it out (Bun, Deno).
  const waits = native().wait !== undefined;
  if (waits) {
    typeErrors.push(
      "b.wait('x', '/tmp', 'a', 1, '\"\"', () => {})",
      "b.wait(h, 5, 'a', 1, '\"\"', () => {})",
      "b.wait(h, '/tmp', null, 1, '\"\"', () => {})",
      "b.wait(h, '/tmp', 'a', '1', '\"\"', () => {})",
      "b.wait(h, '/tmp', 'a', 1, {}, () => {})",
      "b.wait(h, '/tmp', 'a', 1, '\"\"', 'not a function')",
      "b.wait(h, '/tmp', 'a', 1, '\"\"')",
      "b.cancelWait('x')",
    );
  }
  const rangeErrors = [
    'b.read(h, -1)',
    'b.read(h, -2)',
    'b.read(h, 1.5)',
    'b.read(h, NaN)',
    'b.read(h, Infinity)',
    `b.read(h, ${MAX_METADATA_BYTES + 1})`,
    'b.heldBy(h, -1, 0)',
    'b.heldBy(h, 2 ** 32, 0)',
    'b.heldBy(h, 1, NaN)',
    'b.heldBy(h, 1, 8.64e15 + 1)',
    `b.claim(h, -1, '""')`,
    `b.claim(h, 2 ** 32, '""')`,
    ...(waits ? ["b.wait(h, '/tmp', 'a', -1, '\"\"', () => {})", 'b.cancelWait(-1)', 'b.cancelWait(1.5)'] : []),
  ];
  const within = `b.read(h, ${MAX_METADATA_BYTES})`;
  const input = JSON.stringify({ file, calls: [...typeErrors, ...rangeErrors, within] });
  const run = spawnSync(process.execPath, [path.join(FIXTURES, 'binding-calls.js'), input], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const outcomes = run.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const last = outcomes.at(-1)?.call ?? 'the first call';
  assert.equal(run.signal, null, `the child died of ${run.signal} after ${last}: ${run.stderr.slice(0, 300)}`);
  assert.equal(run.status, 0, run.stderr);
  const byCall = new Map(outcomes.map((outcome) => [outcome.call, outcome]));
  for (const call of typeErrors) assert.equal(byCall.get(call)?.threw, 'TypeError', JSON.stringify(byCall.get(call)));
  for (const call of rangeErrors) assert.equal(byCall.get(call)?.threw, 'RangeError', JSON.stringify(byCall.get(call)));
  // By name: the addon numbers errors as libuv does, which is errno only on POSIX.
  const tooLarge = byCall.get(within)?.errno;
  assert.equal(tooLarge && util.getSystemErrorName(-tooLarge), 'EFBIG', 'a file over the bound still reads as too large');
});

// A NUL first byte is how a record in the middle of its write looks, which
// readers read again; a file past the bound is no record whatever its first
// byte, and a sparse one costs nothing to make and 1 MiB a read.
test('a 1 GiB sparse lock file with a NUL first byte is reported too large (strictly), not as unreadable JSON', (t) => {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  fs.writeFileSync(lockPathIn(workspace), '');
  fs.truncateSync(lockPathIn(workspace), 2 ** 30);

  const tooLarge = (error) =>
    error instanceof LockParseError &&
    error.message.includes(lockPathIn(workspace)) &&
    error.message.includes(`larger than ${MAX_METADATA_BYTES} bytes`);
  assert.equal(LoopLock.readExisting(workspace), null);
  assert.throws(() => LoopLock.readExisting(workspace, { strict: true }), tooLarge);
  assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });

  const guard = LoopLock.tryAcquire(workspace, 'holder');
  try {
    fs.writeFileSync(lockPathIn(workspace), '\0');
    fs.truncateSync(lockPathIn(workspace), 2 ** 30);
    assert.equal(LoopLock.readExisting(workspace), null);
    assert.throws(() => LoopLock.readExisting(workspace, { strict: true }), tooLarge);
    assert.deepEqual(LoopLock.status(workspace), { locked: true, holder: null });
    assert.throws(
      () => LoopLock.tryAcquire(workspace, 'second'),
      (error) => error instanceof AlreadyLockedError && error.holder === null,
    );
  } finally {
    guard.release();
  }
});

// O_NOFOLLOW refuses a symlink, but a hard link is the file itself under
// another name: writing the record through it would overwrite that file.
test('a lock file with another hard link is LockError EMLINK for every locking call, and the other file is unchanged byte for byte', async (t) => {
  const workspace = makeWorkspace(t);
  const outside = makeWorkspace(t);
  const other = path.join(outside, 'precious.bin');
  const bytes = Buffer.from(Array.from({ length: 1500 }, (_, i) => (i * 31 + 7) % 256));
  fs.writeFileSync(other, bytes);
  fs.utimesSync(other, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
  const before = fs.statSync(other);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  fs.linkSync(other, lockPathIn(workspace));

  assertLockError(() => LoopLock.tryAcquire(workspace, 'p'), 'EMLINK', lockPathIn(workspace));
  assertLockError(() => LoopLock.acquireBlocking(workspace, 'p'), 'EMLINK', lockPathIn(workspace));
  await assert.rejects(LoopLock.acquire(workspace, 'p'), (error) => {
    assert.ok(error instanceof LockError, error.message);
    assert.equal(error.code, 'EMLINK', error.message);
    assert.ok(error.message.includes(lockPathIn(workspace)), error.message);
    return true;
  });
  assert.deepEqual(fs.readFileSync(other), bytes);
  const after = fs.statSync(other);
  assert.equal(after.mtimeMs, before.mtimeMs);
  assert.equal(after.nlink, 2);
  assert.equal(LoopLock.isLocked(workspace), false, 'no refused call kept a lock');
});

test('a hard link made while acquire() waits: the wait fails with EMLINK when the lock frees, writing nothing', async (t) => {
  const workspace = makeWorkspace(t);
  const outside = makeWorkspace(t);
  const holder = LoopLock.tryAcquire(workspace, 'holder');
  const record = fs.readFileSync(lockPathIn(workspace));
  const waiting = LoopLock.acquire(workspace, 'waiter');
  const other = path.join(outside, 'link');
  fs.linkSync(lockPathIn(workspace), other);
  holder.release();
  await assert.rejects(waiting, (error) => error instanceof LockError && error.code === 'EMLINK');
  assert.deepEqual(fs.readFileSync(other), record);
  assert.equal(LoopLock.isLocked(workspace), false, 'the refused waiter released what it locked');
});

test('a symlinked .ralph directory is followed: only the final component is refused', (t) => {
  if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
  const workspace = makeWorkspace(t);
  const real = makeWorkspace(t);
  fs.symlinkSync(real, path.join(workspace, '.ralph'));
  LoopLock.tryAcquire(workspace, 'through a directory link').release();
  assert.ok(fs.lstatSync(path.join(workspace, '.ralph')).isSymbolicLink());
  assert.equal(LoopLock.readExisting(real, { lockFile: 'loop.lock' }).prompt, 'through a directory link');
});

test('a dangling symlink as .ralph is a LockError naming the path, and its target is not created', (t) => {
  if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
  const workspace = makeWorkspace(t);
  const outside = makeWorkspace(t);
  fs.symlinkSync(path.join(outside, 'missing'), path.join(workspace, '.ralph'));
  assertLockError(() => LoopLock.tryAcquire(workspace, 'p'), 'ENOENT', lockPathIn(workspace));
  assert.deepEqual(fs.readdirSync(outside), []);
});

test('a path cut inside a multi-byte character at PATH_MAX is ENAMETOOLONG, not a shorter path', (t) => {
  if (process.platform === 'win32') return t.skip('PATH_MAX is POSIX; Windows paths go to 32,767 UTF-16 units');
  const workspace = makeWorkspace(t);
  // Lay the path out so that "é" (2 bytes) straddles byte 4095, where a
  // PATH_MAX buffer ends: the copy must not stop before it and open the rest.
  // Names stay under NAME_MAX, so only the path's length is wrong, and a
  // path cut short would name a missing file: isLocked false, no error.
  const head = path.join(workspace, 'x');
  let before = '';
  while (Buffer.byteLength(head) + 1 + before.length + 201 < 4095) before += `${'a'.repeat(200)}/`;
  before += 'a'.repeat(4095 - Buffer.byteLength(head) - 1 - before.length);
  const lockFile = `${before}é${'b'.repeat(20)}`;
  const lockPath = path.join(head, lockFile);
  assert.equal(Buffer.byteLength(lockPath.slice(0, lockPath.indexOf('é'))), 4095);
  for (const options of [{ lockFile }, { lockFile, networkFilesystem: 'allow' }]) {
    assertLockError(() => LoopLock.isLocked(head, options), 'ENAMETOOLONG', workspace);
    assertLockError(() => LoopLock.status(head, options), 'ENAMETOOLONG', workspace);
  }
});

test('a handle that names no open file fails with EBADF and names no syscall, since none ran', (t) => {
  const file = path.join(makeWorkspace(t), 'file');
  fs.writeFileSync(file, '');
  const b = native();
  const h = b.open(file, false);
  b.close(h);
  for (const call of [() => b.identity(h), () => b.tryLock(h, false), () => b.lockBlocking(h, '/', 'x')]) {
    // By name: the addon numbers errors as libuv does (see isErrno).
    assert.throws(call, (error) => util.getSystemErrorName(-error.errno) === 'EBADF' && !('syscall' in error));
  }
});
