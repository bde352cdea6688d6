'use strict';
// The README's example runs as written, as CommonJS and as an ES module:
// it takes a free lock, and names the holder of a held one.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { LoopLock } = require('../dist');
const { makeWorkspace } = require('./helpers');

const PACKAGE = path.join(__dirname, '..');

/** The first `js` block after the README's "## Example" heading. */
function example() {
  const readme = fs.readFileSync(path.join(PACKAGE, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Example\n'));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the README has an example');
  return block[1];
}

/** Writes the example as `name` in a project that depends on this package. */
function project(t, name, source) {
  const dir = makeWorkspace(t);
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PACKAGE, path.join(dir, 'node_modules', 'loop-lock'), 'dir');
  fs.writeFileSync(path.join(dir, name), source);
  return path.join(dir, name);
}

const REQUIRE = "const { LoopLock, AlreadyLockedError } = require('loop-lock');";
const IMPORT = "import { LoopLock, AlreadyLockedError } from 'loop-lock';";

for (const [kind, file, toSource] of [
  ['CommonJS', 'primary.cjs', (code) => code],
  ['an ES module', 'primary.mjs', (code) => code.replace(REQUIRE, IMPORT)],
]) {
  test(`the README's example runs as written, as ${kind}`, (t) => {
    const code = example();
    assert.ok(code.includes(REQUIRE), 'the example starts with its require');
    const script = project(t, file, toSource(code));
    const workspace = makeWorkspace(t);

    const free = spawnSync(process.execPath, [script, workspace], { encoding: 'utf8' });
    assert.equal(free.status, 0, free.stderr);
    assert.match(free.stdout, /^primary loop, lock at .*loop\.lock\n$/);
    assert.equal(LoopLock.isLocked(workspace), false, 'released');

    const guard = LoopLock.tryAcquire(workspace, 'the test holds it');
    try {
      const held = spawnSync(process.execPath, [script, workspace], { encoding: 'utf8' });
      assert.equal(held.status, 75, held.stderr);
      assert.equal(held.stdout, `pid ${process.pid} runs the loop: the test holds it\n`);
    } finally {
      guard.release();
    }
  });
}
