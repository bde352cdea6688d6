'use strict';
// Wrong argument types and impossible paths: a TypeError for a wrong type
// or an empty path, a typed LockError naming the path for a NUL byte or a
// path too long, and nothing created on the way.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { makeWorkspace } = require('./helpers');
const { calls, assertLockError } = require('./bad-input');

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
}
