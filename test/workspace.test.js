'use strict';
// LoopLock.findWorkspace(), as ralph-cli's resolve_workspace_root finds a
// workspace: RALPH_WORKSPACE_ROOT, else the nearest .ralph directory or .git
// entry from the start up, else the start. Real directories, files and links.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { LockError, LoopLock } = require('../dist');
const { makeWorkspace } = require('./helpers');

/** Runs `body` with RALPH_WORKSPACE_ROOT set to `value` (unset for undefined), then restores it. */
function withVariable(value, body) {
  const saved = process.env.RALPH_WORKSPACE_ROOT;
  if (value === undefined) delete process.env.RALPH_WORKSPACE_ROOT;
  else process.env.RALPH_WORKSPACE_ROOT = value;
  try {
    return body();
  } finally {
    if (saved === undefined) delete process.env.RALPH_WORKSPACE_ROOT;
    else process.env.RALPH_WORKSPACE_ROOT = saved;
  }
}

const find = (start) => withVariable(undefined, () => LoopLock.findWorkspace(start));

/** A temporary tree: `root/a/b/c`, with nothing that marks a workspace. */
function tree(t) {
  const root = makeWorkspace(t);
  const deep = path.join(root, 'a', 'b', 'c');
  fs.mkdirSync(deep, { recursive: true });
  return { root, deep };
}

// The temporary directory must not itself sit in a workspace, or "nothing
// found" would find it.
const tmpInWorkspace = (() => {
  for (let dir = fs.realpathSync(require('node:os').tmpdir()); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, '.git')) || fs.existsSync(path.join(dir, '.ralph'))) return dir;
    if (path.dirname(dir) === dir) return null;
  }
})();

test('without a marker anywhere up, the start itself, made absolute', { skip: tmpInWorkspace === null ? false : `${tmpInWorkspace} is a workspace` }, (t) => {
  const { deep } = tree(t);
  assert.equal(find(deep), deep);
  assert.equal(find(`${deep}/../c/.`), deep);
  assert.equal(find(pathToFileURL(deep)), deep);
});

test('the nearest directory holding .ralph/ or .git, the start included', (t) => {
  const { root, deep } = tree(t);
  fs.mkdirSync(path.join(root, '.git'));
  assert.equal(find(deep), root);
  fs.mkdirSync(path.join(root, 'a', '.ralph'));
  assert.equal(find(deep), path.join(root, 'a'), 'the nearest wins');
  fs.mkdirSync(path.join(deep, '.ralph'));
  assert.equal(find(deep), deep, 'the start itself counts');
});

test('a .git file (a worktree) is its own workspace, inside its main repository', (t) => {
  const { root, deep } = tree(t);
  fs.mkdirSync(path.join(root, '.git'));
  fs.writeFileSync(path.join(root, 'a', 'b', '.git'), `gitdir: ${root}/.git/worktrees/b\n`);
  assert.equal(find(deep), path.join(root, 'a', 'b'));
});

test('a .git symlink counts, a .ralph file does not, a dangling .git link does not (as Path::exists sees it)', (t) => {
  const { root, deep } = tree(t);
  fs.writeFileSync(path.join(root, 'a', 'b', '.ralph'), 'not a directory');
  fs.symlinkSync(path.join(root, 'nowhere'), path.join(deep, '.git'));
  fs.mkdirSync(path.join(root, 'elsewhere.git'));
  fs.symlinkSync(path.join(root, 'elsewhere.git'), path.join(root, 'a', '.git'));
  assert.equal(find(deep), path.join(root, 'a'));
});

test('links on the way are kept as written, not resolved: the search goes up the path as given', { skip: tmpInWorkspace === null ? false : `${tmpInWorkspace} is a workspace` }, (t) => {
  const { root, deep } = tree(t);
  fs.mkdirSync(path.join(root, '.ralph'));
  const link = path.join(makeWorkspace(t), 'link');
  fs.symlinkSync(deep, link);
  // Up from the link's own path; up from its target would find root.
  assert.equal(find(link), link);
  fs.mkdirSync(path.join(deep, '.ralph'));
  assert.equal(find(link), link, 'a marker is looked for through the link');
  assert.equal(find(path.join(link, '..')), path.dirname(link), "'..' is resolved lexically");
});

test('a relative start is resolved against the current directory, which is also the default start', (t) => {
  const { root, deep } = tree(t);
  fs.mkdirSync(path.join(root, '.ralph'));
  fs.mkdirSync(path.join(deep, '.ralph'));
  const saved = process.cwd();
  process.chdir(path.join(root, 'a'));
  try {
    assert.equal(find('b/c'), deep);
    assert.equal(find(), root);
    assert.equal(find(undefined), root);
  } finally {
    process.chdir(saved);
  }
});

test('RALPH_WORKSPACE_ROOT wins when set and not blank, resolved against the current directory, existing or not', (t) => {
  const { root, deep } = tree(t);
  fs.mkdirSync(path.join(deep, '.ralph'));
  withVariable(root, () => assert.equal(LoopLock.findWorkspace(deep), root));
  withVariable('does/not/exist', () => {
    assert.equal(LoopLock.findWorkspace(deep), path.resolve('does/not/exist'));
  });
  for (const blank of ['', ' ', '\t\n ']) {
    withVariable(blank, () => assert.equal(LoopLock.findWorkspace(deep), deep, JSON.stringify(blank)));
  }
});

test('bad input: a TypeError for a wrong type or an empty path, a LockError EINVAL naming a path with a NUL byte', () => {
  for (const bad of [null, 42, {}, '', new URL('https://example.com/')]) {
    assert.throws(() => LoopLock.findWorkspace(bad), TypeError, String(bad));
  }
  assert.throws(
    () => LoopLock.findWorkspace('/tmp/a\0b'),
    (error) => error instanceof LockError && error.code === 'EINVAL' && error.message.includes('/tmp/a\\u0000b'),
  );
});
