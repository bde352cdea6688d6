'use strict';
// What the system refuses: a missing permission (the child runs as nobody),
// a read-only and a full file system (a private mount namespace). Each is a
// typed LockError naming the path, with no torn record and no lock left.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { FIXTURES, lockPathIn, makeWorkspace, unshareUnavailable, privilegeDropUnavailable } = require('./helpers');
const { attempt, assertOutcome } = require('./bad-input');

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

test('without permission, every call is LockError EACCES naming the path', { skip: privilegeDropUnavailable }, (t) => {
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

test('on a read-only file system, tryAcquire is LockError EROFS naming the path', { skip: unshareUnavailable }, (t) => {
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

test('on a full file system, a large prompt is LockError ENOSPC, leaves no torn record and no lock held', { skip: unshareUnavailable }, (t) => {
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
