'use strict';
// Lock files that hold no record: garbage, invalid UTF-8, zeros, a cut
// record, one past the size bound. Readers find no holder (strictly, a
// LockParseError), and taking the lock rewrites the file whole.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { AlreadyLockedError, LockParseError, LoopLock, MAX_METADATA_BYTES } = require('../dist');
const { lockPathIn, makeWorkspace } = require('./helpers');
const { attempt } = require('./bad-input');

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
