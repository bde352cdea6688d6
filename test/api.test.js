'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { pathToFileURL } = require('node:url');
const {
  AlreadyLockedError,
  LOCK_FILE,
  LockError,
  LockGuard,
  LockParseError,
  LoopLock,
  UnsupportedPlatformError,
} = require('../dist');
const { lockPathIn, makeWorkspace } = require('./helpers');

test('LOCK_FILE is .ralph/loop.lock, exported and on LoopLock', () => {
  assert.equal(LOCK_FILE, '.ralph/loop.lock');
  assert.equal(LoopLock.LOCK_FILE, '.ralph/loop.lock');
});

test('tryAcquire creates .ralph/loop.lock and returns a guard with this process as holder', (t) => {
  const workspace = makeWorkspace(t);
  const before = Date.now();
  const guard = LoopLock.tryAcquire(workspace, 'implement auth');
  const after = Date.now();
  try {
    assert.ok(guard instanceof LockGuard);
    assert.equal(guard.lockPath, lockPathIn(workspace));
    assert.ok(fs.statSync(guard.lockPath).isFile());
    assert.equal(guard.metadata.pid, process.pid);
    assert.equal(guard.metadata.prompt, 'implement auth');
    assert.ok(guard.metadata.started instanceof Date);
    assert.ok(guard.metadata.started.getTime() >= before && guard.metadata.started.getTime() <= after);
    assert.equal(guard.released, false);
  } finally {
    guard.release();
  }
});

test('the lock file is created with mode 0644 under umask 022', (t) => {
  if (process.platform === 'win32') return t.skip('Windows files have no POSIX mode bits');
  const workspace = makeWorkspace(t);
  const previous = process.umask(0o022);
  try {
    LoopLock.tryAcquire(workspace, 'mode').release();
  } finally {
    process.umask(previous);
  }
  assert.equal(fs.statSync(lockPathIn(workspace)).mode & 0o777, 0o644);
});

test('a relative workspace resolves to an absolute lockPath', (t) => {
  const workspace = makeWorkspace(t);
  const relative = path.relative(process.cwd(), workspace);
  const guard = LoopLock.tryAcquire(relative, 'relative');
  try {
    assert.equal(guard.lockPath, lockPathIn(workspace));
  } finally {
    guard.release();
  }
});

test('a second tryAcquire in the same process conflicts with the first', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'first');
  try {
    assert.throws(
      () => LoopLock.tryAcquire(workspace, 'second'),
      (error) => {
        assert.ok(error instanceof AlreadyLockedError);
        assert.ok(error instanceof LockError);
        assert.ok(error instanceof Error);
        assert.equal(error.name, 'AlreadyLockedError');
        assert.equal(error.code, 'ELOCKED');
        assert.equal(error.path, guard.lockPath);
        assert.equal(error.holder.pid, process.pid);
        assert.equal(error.holder.prompt, 'first');
        assert.equal(error.holder.started.getTime(), guard.metadata.started.getTime());
        assert.ok(error.message.includes(guard.lockPath));
        assert.ok(error.message.includes(String(process.pid)));
        return true;
      },
    );
    assert.equal(LoopLock.readExisting(workspace).prompt, 'first', 'the loser must not overwrite the record');
  } finally {
    guard.release();
  }
});

test('release() frees the lock, is idempotent, and lets the next tryAcquire succeed', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'one');
  guard.release();
  assert.equal(guard.released, true);
  assert.doesNotThrow(() => guard.release());
  assert.equal(guard.released, true);
  const next = LoopLock.tryAcquire(workspace, 'two');
  assert.equal(next.metadata.prompt, 'two');
  guard.release();
  assert.equal(LoopLock.isLocked(workspace), true, "a stale guard's release must not free a newer holder's lock");
  next.release();
});

test('Symbol.dispose releases the guard, as `using` would at the end of its block', (t) => {
  const workspace = makeWorkspace(t);
  assert.equal(typeof LockGuard.prototype[Symbol.dispose], 'function');
  let guard;
  {
    // The down-level form of `using guard = LoopLock.tryAcquire(...)`.
    guard = LoopLock.tryAcquire(workspace, 'scoped');
    try {
      assert.equal(LoopLock.isLocked(workspace), true);
    } finally {
      guard[Symbol.dispose]();
    }
  }
  assert.equal(guard.released, true);
  assert.equal(LoopLock.isLocked(workspace), false);
  assert.doesNotThrow(() => guard[Symbol.dispose]());
});

test('the lockFile option places the lock elsewhere, independent of the default lock', (t) => {
  const workspace = makeWorkspace(t);
  const custom = LoopLock.tryAcquire(workspace, 'custom', { lockFile: 'locks/deep/a.lock' });
  const standard = LoopLock.tryAcquire(workspace, 'standard');
  try {
    assert.equal(custom.lockPath, path.join(workspace, 'locks', 'deep', 'a.lock'));
    assert.ok(fs.statSync(custom.lockPath).isFile());
    assert.equal(LoopLock.isLocked(workspace, { lockFile: 'locks/deep/a.lock' }), true);
    assert.equal(LoopLock.readExisting(workspace, { lockFile: 'locks/deep/a.lock' }).prompt, 'custom');
    assert.equal(LoopLock.status(workspace, { lockFile: 'locks/deep/a.lock' }).holder.prompt, 'custom');
    assert.throws(() => LoopLock.tryAcquire(workspace, 'x', { lockFile: 'locks/deep/a.lock' }), AlreadyLockedError);
    assert.equal(LoopLock.readExisting(workspace).prompt, 'standard');
  } finally {
    custom.release();
    standard.release();
  }
  assert.equal(LoopLock.isLocked(workspace, { lockFile: 'locks/deep/a.lock' }), false);
});

test('an absolute lockFile is used as it is', (t) => {
  const workspace = makeWorkspace(t);
  const elsewhere = makeWorkspace(t);
  const absolute = path.join(elsewhere, 'abs.lock');
  const guard = LoopLock.tryAcquire(workspace, 'abs', { lockFile: absolute });
  try {
    assert.equal(guard.lockPath, absolute);
    assert.equal(fs.existsSync(path.join(workspace, '.ralph')), false);
  } finally {
    guard.release();
  }
});

test('an explicit lockFile of undefined means the default lock file', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'default', { lockFile: undefined });
  try {
    assert.equal(guard.lockPath, lockPathIn(workspace));
  } finally {
    guard.release();
  }
});

test('a file: URL works as the workspace for every call', (t) => {
  const workspace = makeWorkspace(t);
  const url = pathToFileURL(workspace);
  assert.equal(LoopLock.isLocked(url), false);
  const guard = LoopLock.tryAcquire(url, 'by url');
  try {
    assert.equal(guard.lockPath, lockPathIn(workspace));
    assert.equal(LoopLock.isLocked(url), true);
    assert.equal(LoopLock.isLocked(workspace), true);
    assert.equal(LoopLock.status(url).holder.prompt, 'by url');
    assert.equal(LoopLock.readExisting(url).prompt, 'by url');
    assert.throws(() => LoopLock.tryAcquire(workspace, 'by path'), AlreadyLockedError);
  } finally {
    guard.release();
  }
  LoopLock.acquireBlocking(url, 'blocking by url').release();
});

test('isLocked, status and readExisting on a workspace without a lock file report nothing and create nothing', (t) => {
  const workspace = makeWorkspace(t);
  assert.equal(LoopLock.isLocked(workspace), false);
  assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });
  assert.equal(LoopLock.readExisting(workspace), null);
  assert.deepEqual(fs.readdirSync(workspace), []);
});

test('isLocked is true only while the lock is held', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'held');
  assert.equal(LoopLock.isLocked(workspace), true);
  guard.release();
  assert.equal(LoopLock.isLocked(workspace), false);
});

test('probes do not disturb the holder: isLocked and status leave the lock held', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'held');
  try {
    for (let i = 0; i < 3; i++) {
      LoopLock.isLocked(workspace);
      LoopLock.status(workspace);
      LoopLock.readExisting(workspace);
    }
    assert.throws(() => LoopLock.tryAcquire(workspace, 'intruder'), AlreadyLockedError);
  } finally {
    guard.release();
  }
});

test('status reports the holder only while the lock is held', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'status check');
  const held = LoopLock.status(workspace);
  assert.equal(held.locked, true);
  assert.deepEqual(held.holder, guard.metadata);
  guard.release();
  assert.deepEqual(LoopLock.status(workspace), { locked: false, holder: null });
});

test('readExisting returns the holder while held and the past holder after release', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'past holder');
  assert.deepEqual(LoopLock.readExisting(workspace), guard.metadata);
  guard.release();
  assert.deepEqual(LoopLock.readExisting(workspace), guard.metadata);
});

test('readExisting of an empty lock file is null', (t) => {
  const workspace = makeWorkspace(t);
  fs.mkdirSync(path.join(workspace, '.ralph'));
  fs.writeFileSync(lockPathIn(workspace), '');
  assert.equal(LoopLock.readExisting(workspace), null);
  fs.writeFileSync(lockPathIn(workspace), ' \n\t\n');
  assert.equal(LoopLock.readExisting(workspace), null);
});

test('release leaves the lock file and its record in place', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'stays');
  const held = fs.readFileSync(guard.lockPath);
  const { ino } = fs.statSync(guard.lockPath);
  guard.release();
  assert.deepEqual(fs.readFileSync(guard.lockPath), held);
  assert.equal(fs.statSync(guard.lockPath).ino, ino);
});

test('a new holder rewrites the record in the same inode', (t) => {
  const workspace = makeWorkspace(t);
  const first = LoopLock.tryAcquire(workspace, 'a much longer first prompt than the second one');
  const { ino } = fs.statSync(first.lockPath);
  first.release();
  const second = LoopLock.tryAcquire(workspace, 'short');
  try {
    assert.equal(fs.statSync(second.lockPath).ino, ino);
    assert.deepEqual(LoopLock.readExisting(workspace), second.metadata);
    assert.ok(fs.readFileSync(second.lockPath, 'utf8').endsWith('"short"\n}'));
  } finally {
    second.release();
  }
});

test('state(), isIntact() and verify() follow the guard from held to released', (t) => {
  const workspace = makeWorkspace(t);
  const guard = LoopLock.tryAcquire(workspace, 'state');
  assert.equal(guard.state(), 'held');
  assert.equal(guard.isIntact(), true);
  assert.doesNotThrow(() => guard.verify());
  guard.release();
  assert.equal(guard.state(), 'released');
  assert.equal(guard.isIntact(), false);
  assert.throws(
    () => guard.verify(),
    (error) => error instanceof LockError && error.code === 'ERELEASED' && error.message.includes(guard.lockPath),
  );
});

test('LockGuard cannot be constructed directly', () => {
  assert.throws(() => new LockGuard(Symbol('LockGuard'), {}, '/tmp/x', {}), TypeError);
});

test('error classes form one hierarchy with stable names and codes', () => {
  const parse = new LockParseError('/w/.ralph/loop.lock', 'not valid JSON');
  assert.ok(parse instanceof LockError);
  assert.equal(parse.name, 'LockParseError');
  assert.equal(parse.code, 'EPARSE');
  assert.ok(parse.message.includes('/w/.ralph/loop.lock'));
  const unsupported = new UnsupportedPlatformError('aix');
  assert.ok(unsupported instanceof LockError);
  assert.equal(unsupported.code, 'ENOTSUP');
  assert.ok(unsupported.message.includes('aix'));
  const held = new AlreadyLockedError('/w/.ralph/loop.lock', null);
  assert.equal(held.holder, null);
  assert.equal(held.code, 'ELOCKED');
});

test('a relative workspace follows the working directory from call to call', (t) => {
  // Back to the old working directory before the workspaces are removed:
  // Windows cannot remove a process's working directory.
  const cwd = process.cwd();
  t.after(() => process.chdir(cwd));
  const first = makeWorkspace(t);
  const second = makeWorkspace(t);
  process.chdir(first);
  const a = LoopLock.tryAcquire('.', 'first');
  process.chdir(second);
  const b = LoopLock.tryAcquire('.', 'second');
  assert.equal(a.lockPath, path.join(fs.realpathSync(first), LoopLock.LOCK_FILE));
  assert.equal(b.lockPath, path.join(fs.realpathSync(second), LoopLock.LOCK_FILE));
  a.release();
  b.release();
});

test('on a drive Windows calls remote, networkFilesystem applies (test:windows maps one under Wine)', (t) => {
  const drive = process.env.LOOP_LOCK_TEST_NETWORK_DRIVE;
  if (process.platform !== 'win32' || drive === undefined) {
    return t.skip('needs a Windows drive of the remote type (filesystem.test.js covers Linux)');
  }
  const workspace = fs.mkdtempSync(path.join(`${drive}\\`, 'loop-lock-test-'));
  t.after(() => fs.rmSync(workspace, { recursive: true, force: true }));
  assert.throws(() => LoopLock.tryAcquire(workspace, 'remote', { networkFilesystem: 'error' }), {
    code: 'ENETFS',
    message: /network filesystem \(.*, remote\)/,
  });
  LoopLock.tryAcquire(workspace, 'remote', { networkFilesystem: 'allow' }).release();
  assert.equal(LoopLock.readExisting(workspace).prompt, 'remote');
});

test('Windows paths: a file: URL with a drive letter, a \\\\?\\ path and a path past MAX_PATH', (t) => {
  if (process.platform !== 'win32') return t.skip('drive letters and \\\\?\\ paths are Windows');
  const workspace = makeWorkspace(t);
  const url = pathToFileURL(workspace);
  assert.match(url.href, /^file:\/\/\/[A-Za-z]:\//);
  LoopLock.tryAcquire(url, 'from a URL').release();
  assert.equal(LoopLock.readExisting(workspace).prompt, 'from a URL');

  const namespaced = `\\\\?\\${workspace}`;
  const guard = LoopLock.tryAcquire(namespaced, 'namespaced');
  assert.equal(LoopLock.isLocked(workspace), true, 'the same file as the plain path');
  assert.equal(guard.state(), 'held');
  guard.release();

  // Longer than MAX_PATH (260): the addon opens \\?\ paths.
  const deep = path.join(workspace, ...Array.from({ length: 4 }, (_, i) => `${i}`.repeat(80)));
  assert.ok(lockPathIn(deep).length > 260);
  const long = LoopLock.tryAcquire(deep, 'long');
  assert.equal(LoopLock.status(deep).holder.prompt, 'long');
  assert.equal(long.state(), 'held');
  long.release();
});
