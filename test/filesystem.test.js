'use strict';

// flock() on a network or FUSE filesystem can silently be a different lock
// (local to one host or one mount, or a POSIX record lock in disguise).
// loop-lock reads the filesystem type with fstatfs and, by default, warns.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { LoopLock, LockError } = require('../dist');
const { classifyFilesystem } = require('../dist/filesystem.js');

function tempDir(t, parent = os.tmpdir()) {
  const dir = fs.mkdtempSync(path.join(parent, 'loop-lock-fs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Collects the LOOP_LOCK_NETWORK_FS warnings emitted while `run` runs and
// the turns of the event loop after it (process warnings are emitted on
// the next tick).
async function networkWarnings(run) {
  const seen = [];
  const listener = (warning) => {
    if (warning.code === 'LOOP_LOCK_NETWORK_FS') seen.push(warning.message);
  };
  process.on('warning', listener);
  try {
    run();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

test('Linux magic numbers of network filesystems classify as network, with their names', () => {
  const expected = {
    0x6969: 'nfs',
    0x517b: 'smb',
    0xff534d42: 'cifs',
    0xfe534d42: 'smb2',
    0x01021997: '9p',
    0x5346414f: 'afs',
    0x6b414653: 'kafs',
    0x00c36400: 'ceph',
    0x73757245: 'coda',
    0x0bd00bd0: 'lustre',
    0x47504653: 'gpfs',
    0x19830326: 'beegfs',
    0x7461636f: 'ocfs2',
    0x01161970: 'gfs2',
    0x786f4256: 'vboxsf',
    0xbacbacbc: 'vmhgfs',
    0x7c7c6673: 'prl_fs',
  };
  for (const [magic, name] of Object.entries(expected)) {
    assert.deepEqual(classifyFilesystem(Number(magic)), { kind: 'network', name }, `magic 0x${Number(magic).toString(16)}`);
  }
});

test('the FUSE magic number classifies as fuse', () => {
  assert.deepEqual(classifyFilesystem(0x65735546), { kind: 'fuse', name: 'fuse' });
});

test('a magic number read as a negative 32-bit word (f_type on 32-bit Linux) classifies the same', () => {
  assert.deepEqual(classifyFilesystem(0xff534d42 | 0), { kind: 'network', name: 'cifs' });
  assert.deepEqual(classifyFilesystem(0xfe534d42 | 0), { kind: 'network', name: 'smb2' });
});

test('local filesystems (ext4, xfs, btrfs, tmpfs, overlayfs, zfs) and unknown numbers classify as local', () => {
  for (const magic of [0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0x12345678]) {
    const info = classifyFilesystem(magic);
    assert.equal(info.kind, 'local', `magic 0x${magic.toString(16)}`);
    assert.equal(info.name, `0x${magic.toString(16)}`);
  }
});

test('macOS type names: nfs, smbfs, afpfs, webdav are network, *fuse* is fuse, apfs and hfs are local', () => {
  for (const name of ['nfs', 'smbfs', 'afpfs', 'webdav']) {
    assert.deepEqual(classifyFilesystem(name), { kind: 'network', name });
  }
  for (const name of ['macfuse', 'osxfuse', 'fusefs']) assert.equal(classifyFilesystem(name).kind, 'fuse');
  for (const name of ['apfs', 'hfs', 'msdos', 'exfat']) assert.equal(classifyFilesystem(name).kind, 'local');
});

test("a local disk passes even with networkFilesystem: 'error', and warns about nothing", async (t) => {
  const dirs = [tempDir(t)];
  if (fs.existsSync('/dev/shm')) dirs.push(tempDir(t, '/dev/shm'));
  const warnings = await networkWarnings(() => {
    for (const dir of dirs) {
      const guard = LoopLock.tryAcquire(dir, 'local', { networkFilesystem: 'error' });
      assert.equal(LoopLock.status(dir, { networkFilesystem: 'error' }).holder.prompt, 'local');
      guard.release();
      LoopLock.tryAcquire(dir, 'default policy').release();
    }
  });
  assert.deepEqual(warnings, []);
});

test('an unknown networkFilesystem value is a TypeError, before any file is created', (t) => {
  const dir = tempDir(t);
  for (const value of ['never', '', 1, null, true]) {
    for (const call of [
      () => LoopLock.tryAcquire(dir, 'x', { networkFilesystem: value }),
      () => LoopLock.acquireBlocking(dir, 'x', { networkFilesystem: value }),
      () => LoopLock.status(dir, { networkFilesystem: value }),
      () => LoopLock.isLocked(dir, { networkFilesystem: value }),
      () => LoopLock.readExisting(dir, { networkFilesystem: value }),
    ]) {
      assert.throws(call, TypeError);
    }
  }
  assert.equal(fs.existsSync(path.join(dir, '.ralph')), false);
});

// A real FUSE filesystem: bindfs mirrors a directory through /dev/fuse. It
// needs the bindfs package, /dev/fuse and the right to mount (root here).
function bindfsMount(t) {
  const which = spawnSync('sh', ['-c', 'command -v bindfs']);
  if (which.status !== 0) return { skip: 'bindfs is not installed (apt-get install bindfs)' };
  const source = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-lock-fs-source-'));
  const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-lock-fs-mount-'));
  const mounted = spawnSync('bindfs', [source, mountPoint], { encoding: 'utf8' });
  t.after(() => {
    if (mounted.status === 0) spawnSync('fusermount', ['-u', '-z', mountPoint]);
    fs.rmSync(mountPoint, { recursive: true, force: true });
    fs.rmSync(source, { recursive: true, force: true });
  });
  if (mounted.status !== 0) return { skip: `bindfs cannot mount here: ${mounted.stderr.trim()}` };
  return { source, mountPoint };
}

test('on FUSE, flock() through the mount does not exclude a holder that reaches the file directly', (t) => {
  const mount = bindfsMount(t);
  if (mount.skip) return t.skip(mount.skip);
  const direct = LoopLock.tryAcquire(mount.source, 'direct');
  try {
    const throughFuse = LoopLock.tryAcquire(mount.mountPoint, 'through FUSE', { networkFilesystem: 'allow' });
    throughFuse.release();
  } finally {
    direct.release();
  }
});

test("on FUSE, networkFilesystem: 'error' refuses every locking call with ENETFS naming path and filesystem", (t) => {
  const mount = bindfsMount(t);
  if (mount.skip) return t.skip(mount.skip);
  const lockPath = path.join(mount.mountPoint, '.ralph', 'loop.lock');
  const isRefusal = (error) =>
    error instanceof LockError &&
    error.code === 'ENETFS' &&
    error.path === lockPath &&
    error.message.includes(lockPath) &&
    error.message.includes('fuse');
  const options = { networkFilesystem: 'error' };
  assert.throws(() => LoopLock.tryAcquire(mount.mountPoint, 'x', options), isRefusal);
  assert.throws(() => LoopLock.acquireBlocking(mount.mountPoint, 'x', options), isRefusal);
  assert.throws(() => LoopLock.status(mount.mountPoint, options), isRefusal);
  assert.throws(() => LoopLock.isLocked(mount.mountPoint, options), isRefusal);
  // readExisting takes no lock, so there is nothing to refuse.
  assert.equal(LoopLock.readExisting(mount.mountPoint, options), null);
  // Refused before locking: the file the open created is still empty.
  assert.equal(fs.readFileSync(lockPath, 'utf8'), '');
});

test('on FUSE, the default policy warns once per lock path, naming the path and the filesystem', async (t) => {
  const mount = bindfsMount(t);
  if (mount.skip) return t.skip(mount.skip);
  const first = await networkWarnings(() => {
    LoopLock.tryAcquire(mount.mountPoint, 'warned').release();
    LoopLock.status(mount.mountPoint);
    LoopLock.tryAcquire(mount.mountPoint, 'warned again').release();
  });
  assert.equal(first.length, 1);
  assert.ok(first[0].includes(path.join(mount.mountPoint, '.ralph', 'loop.lock')));
  assert.match(first[0], /fuse/);
  const other = await networkWarnings(() => {
    LoopLock.tryAcquire(mount.mountPoint, 'other file', { lockFile: 'other.lock' }).release();
  });
  assert.equal(other.length, 1);
  assert.ok(other[0].includes(path.join(mount.mountPoint, 'other.lock')));
});

test("on FUSE, networkFilesystem: 'allow' locks without a warning", async (t) => {
  const mount = bindfsMount(t);
  if (mount.skip) return t.skip(mount.skip);
  const warnings = await networkWarnings(() => {
    const guard = LoopLock.tryAcquire(mount.mountPoint, 'allowed', { networkFilesystem: 'allow' });
    assert.equal(LoopLock.isLocked(mount.mountPoint, { networkFilesystem: 'allow' }), true);
    guard.release();
  });
  assert.deepEqual(warnings, []);
});

test('the filesystem type is read again once a second old: a lock path moved onto FUSE is then refused', async (t) => {
  const mount = bindfsMount(t);
  if (mount.skip) return t.skip(mount.skip);
  const dir = tempDir(t);
  const local = tempDir(t);
  const ralph = path.join(dir, '.ralph');
  fs.symlinkSync(local, ralph);
  const options = { networkFilesystem: 'error' };
  LoopLock.tryAcquire(dir, 'on a local disk', options).release();
  assert.equal(LoopLock.isLocked(dir, options), false);

  // The same lock path, now on the FUSE mount.
  fs.unlinkSync(ralph);
  fs.symlinkSync(mount.mountPoint, ralph);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const isRefusal = (error) => error instanceof LockError && error.code === 'ENETFS';
  assert.throws(() => LoopLock.tryAcquire(dir, 'on FUSE', options), isRefusal);
  assert.throws(() => LoopLock.isLocked(dir, options), isRefusal);
  assert.throws(() => LoopLock.status(dir, options), isRefusal);
});

test('the filesystem types remembered are bounded: after 64 other lock paths, the first one is read and warned about again', async (t) => {
  const mount = bindfsMount(t);
  if (mount.skip) return t.skip(mount.skip);
  const lockFile = (i) => ({ lockFile: `bound-${i}.lock` });
  const first = await networkWarnings(() => LoopLock.tryAcquire(mount.mountPoint, 'x', lockFile(0)).release());
  assert.equal(first.length, 1);
  const others = await networkWarnings(() => {
    for (let i = 1; i <= 64; i++) LoopLock.tryAcquire(mount.mountPoint, 'x', lockFile(i)).release();
  });
  assert.equal(others.length, 64);
  const again = await networkWarnings(() => LoopLock.tryAcquire(mount.mountPoint, 'x', lockFile(0)).release());
  assert.equal(again.length, 1, 'the first path was forgotten, so its filesystem was read again');
  assert.ok(again[0].includes(path.join(mount.mountPoint, 'bound-0.lock')));
});
