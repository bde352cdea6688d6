'use strict';
// FileLock in one process: the sidecar's name, what guards exclude, the
// blocking waits' deadlock refusal, collection of dropped guards, bad input.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { FileLock, FileLockGuard, LockError } = require('../dist');
const { FIXTURES, makeWorkspace } = require('./helpers');

const tryIn = (lock, mode) => (mode === 'shared' ? lock.tryShared() : lock.tryExclusive());

test('the sidecar is named as file_lock.rs names it, absolute, and nothing is created until a lock is taken', (t) => {
  const dir = makeWorkspace(t);
  const table = {
    'tasks.jsonl': 'tasks.jsonl.lock',
    'memories.md': 'memories.md.lock',
    noext: 'noext..lock',
    '.env': '.env..lock',
    'foo.': 'foo..lock',
    'a.b.c': 'a.b.c.lock',
    'sub/': 'sub..lock',
  };
  for (const [name, sidecar] of Object.entries(table)) {
    assert.equal(new FileLock(path.join(dir, name) + (name.endsWith('/') ? '/' : '')).lockPath, path.join(dir, sidecar));
  }
  const relative = new FileLock(path.join('.ralph', 'agent', 'tasks.jsonl'));
  assert.equal(relative.lockPath, path.join(process.cwd(), '.ralph', 'agent', 'tasks.jsonl.lock'));
  const fromUrl = new FileLock(pathToFileURL(path.join(dir, 'deep', 'er', 'tasks.jsonl')));
  assert.equal(fromUrl.lockPath, path.join(dir, 'deep', 'er', 'tasks.jsonl.lock'));
  assert.deepEqual(fs.readdirSync(dir), [], 'naming a lock touches nothing');

  const guard = fromUrl.tryExclusive();
  assert.ok(fs.statSync(fromUrl.lockPath).isFile(), 'the sidecar and its directories are created');
  assert.equal(fs.existsSync(path.join(dir, 'deep', 'er', 'tasks.jsonl')), false, 'the guarded file is not');
  guard.release();
  assert.equal(fs.readFileSync(fromUrl.lockPath, 'utf8'), '', 'no record is written');
});

test('guards of one process exclude each other as two processes do: shared ones coexist, exclusive excludes all', (t) => {
  const file = path.join(makeWorkspace(t), 'tasks.jsonl');
  const [a, b] = [new FileLock(file), new FileLock(file)];
  for (const held of ['shared', 'exclusive']) {
    for (const tried of ['shared', 'exclusive']) {
      const guard = tryIn(a, held);
      assert.equal(guard.mode, held);
      const other = tryIn(b, tried);
      assert.equal(other !== null, held === 'shared' && tried === 'shared', `${held} then ${tried}`);
      // The same FileLock, too: each guard is its own open file description.
      const again = tryIn(a, tried);
      assert.equal(again !== null, held === 'shared' && tried === 'shared', `${held} then ${tried} on one FileLock`);
      other?.release();
      again?.release();
      guard.release();
    }
  }
});

test('no upgrade: tryExclusive while this process holds a shared guard is refused like any other', (t) => {
  const lock = new FileLock(path.join(makeWorkspace(t), 'tasks.jsonl'));
  const reader = lock.tryShared();
  assert.equal(lock.tryExclusive(), null);
  reader.release();
  const writer = lock.tryExclusive();
  assert.notEqual(writer, null, 'release, then take the other mode');
  writer.release();
});

test('release() is idempotent, `using` releases, released tells, and guards cannot be made directly', (t) => {
  const lock = new FileLock(path.join(makeWorkspace(t), 'tasks.jsonl'));
  const guard = lock.tryExclusive();
  assert.ok(guard instanceof FileLockGuard);
  assert.equal(guard.lockPath, lock.lockPath);
  assert.equal(guard.released, false);
  guard.release();
  guard.release();
  assert.equal(guard.released, true);
  {
    const scoped = lock.tryExclusive();
    scoped[Symbol.dispose]();
    assert.equal(scoped.released, true);
  }
  const free = lock.tryExclusive();
  assert.notEqual(free, null, 'both released the lock');
  free.release();
  assert.throws(() => new FileLockGuard(Symbol('FileLockGuard'), 1, 'x', 'shared'), TypeError);
});

test('blocking waits take a free lock, and refuse with EDEADLK only where this thread holds a conflicting guard', (t) => {
  const file = path.join(makeWorkspace(t), 'tasks.jsonl');
  const lock = new FileLock(file);
  const deadlock = (error) => {
    assert.ok(error instanceof LockError);
    assert.equal(error.code, 'EDEADLK');
    assert.equal(error.path, lock.lockPath);
    assert.ok(error.message.includes(lock.lockPath), error.message);
    return true;
  };
  const reader = lock.sharedBlocking();
  const second = new FileLock(file).sharedBlocking();
  assert.equal(second.mode, 'shared', 'shared waits for shared: no deadlock');
  assert.throws(() => lock.exclusiveBlocking(), deadlock);
  second.release();
  assert.throws(() => lock.exclusiveBlocking(), deadlock, 'any shared guard of this thread');
  reader.release();

  const writer = lock.exclusiveBlocking();
  assert.throws(() => lock.sharedBlocking(), deadlock);
  assert.throws(() => lock.exclusiveBlocking(), deadlock);
  writer.release();
  lock.exclusiveBlocking().release();
});

test('dropped guards are released after garbage collection, with exactly one warning naming a path', (t) => {
  const dir = makeWorkspace(t);
  const abandoned = [path.join(dir, 'a.jsonl'), path.join(dir, 'b.md')];
  const run = spawnSync(
    process.execPath,
    ['--expose-gc', path.join(FIXTURES, 'file-lock-gc.js'), path.join(dir, 'kept'), ...abandoned],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.deepEqual(report.heldBefore, [true, true], 'held until collected');
  assert.deepEqual(report.heldAfter, [false, false]);
  assert.equal(report.keptHeld, true, 'a referenced guard survives');
  assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
  assert.equal(report.warnings[0].code, 'LOOP_LOCK_GC_RELEASE');
  const sidecars = abandoned.map((file) => new FileLock(file).lockPath);
  assert.ok(sidecars.some((sidecar) => report.warnings[0].message.includes(sidecar)), report.warnings[0].message);
});

test('bad input: TypeError for wrong types and empty paths, a LockError naming the path for the rest', async (t) => {
  const dir = makeWorkspace(t);
  for (const bad of [undefined, null, 5, {}, '', new URL('https://example.com/x')]) {
    assert.throws(() => new FileLock(bad), TypeError, String(bad));
  }
  const names = (code, lockPath) => (error) => {
    assert.ok(error instanceof LockError, String(error));
    assert.equal(error.code, code);
    assert.ok(error.message.includes(lockPath), error.message);
    return true;
  };
  assert.throws(() => new FileLock(path.join(dir, 'nul\0byte')), names('EINVAL', 'nul\\u0000byte'));

  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const underFile = new FileLock(path.join(file, 'tasks.jsonl'));
  // Windows reports a file where a directory should be as a missing path, as Node's fs does there.
  const notADirectory = process.platform === 'win32' ? 'ENOENT' : 'ENOTDIR';
  assert.throws(() => underFile.tryShared(), names(notADirectory, underFile.lockPath));
  assert.throws(() => underFile.exclusiveBlocking(), names(notADirectory, underFile.lockPath));
  await assert.rejects(underFile.shared(), names(notADirectory, underFile.lockPath));

  const directory = new FileLock(path.join(dir, 'sub', 'noext'));
  fs.mkdirSync(directory.lockPath, { recursive: true });
  assert.throws(() => directory.tryExclusive(), names('EISDIR', directory.lockPath));
  if (process.platform !== 'win32') {
    // A path without a file name is its own "sidecar", as in Rust: a
    // directory. (Windows resolves the `..` itself, and refuses the path.)
    const parent = new FileLock(`${dir}/sub/..`);
    assert.throws(() => parent.tryExclusive(), names('EISDIR', parent.lockPath));
  }

  const lock = new FileLock(path.join(dir, 'ok'));
  await assert.rejects(lock.shared('soon'), TypeError);
  await assert.rejects(lock.shared({ signal: {} }), TypeError);
  await assert.rejects(lock.exclusive({ timeout: '5' }), TypeError);
  await assert.rejects(lock.exclusive({ timeout: -1 }), RangeError);
  await assert.rejects(lock.exclusive({ timeout: Number.NaN }), RangeError);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a-file', 'sub'], 'nothing else was created');
});
