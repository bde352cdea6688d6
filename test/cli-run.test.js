'use strict';
// The loop-lock command's workspace and `run`'s hold on its command's whole
// process tree, with real processes: the command and what it starts meet
// the test on readiness markers, never a delay.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { makeWorkspace } = require('./helpers');

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

/** Runs the CLI to its end; resolves with {code, signal, stdout, stderr}. */
function loopLock(args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const output = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (chunk) => (output.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (output.stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, ...output }));
  });
}

test('without DIR, status finds the workspace as ralph does: the nearest .git up, or RALPH_WORKSPACE_ROOT', async (t) => {
  const root = makeWorkspace(t);
  const deep = path.join(root, 'a', 'b');
  fs.mkdirSync(deep, { recursive: true });
  fs.mkdirSync(path.join(root, '.git'));
  const env = { ...process.env };
  delete env.RALPH_WORKSPACE_ROOT;
  const found = await loopLock(['status'], { cwd: deep, env });
  assert.equal(found.stdout, `${path.join(root, '.ralph', 'loop.lock')}: free\n`);
  const named = await loopLock(['status'], { cwd: deep, env: { ...env, RALPH_WORKSPACE_ROOT: deep } });
  assert.equal(named.stdout, `${path.join(deep, '.ralph', 'loop.lock')}: free\n`);
  const given = await loopLock(['status', '.'], { cwd: deep, env });
  assert.equal(given.stdout, `${path.join(deep, '.ralph', 'loop.lock')}: free\n`, 'a DIR given is used as it is');
});

test('a script whose #! interpreter is missing: the message names the interpreter, not the script, as missing', async (t) => {
  const dir = makeWorkspace(t);
  const script = path.join(dir, 'x.sh');
  fs.writeFileSync(script, '#!/nonexistent/interpreter -e\necho never\n', { mode: 0o755 });
  const result = await loopLock(['run', dir, '--', './x.sh'], { cwd: dir });
  assert.equal(result.code, 127);
  assert.equal(
    result.stderr,
    'loop-lock: cannot start ./x.sh: its interpreter /nonexistent/interpreter (named on its #! line) was not found (ENOENT)\n',
  );
  const missing = await loopLock(['run', dir, '--', './y.sh'], { cwd: dir });
  assert.equal(missing.stderr, 'loop-lock: command not found: ./y.sh (ENOENT)\n');
});

// A copy of `true` whose ELF interpreter path is changed to one that does
// not exist, byte for byte the same length: execve() fails with ENOENT.
const LOADER = '/lib64/ld-linux-x86-64.so.2';
const trueBinary = ['/usr/bin/true', '/bin/true'].find((file) => fs.existsSync(file));
const elf = trueBinary && fs.readFileSync(trueBinary);
test('a binary whose loader is missing: the message says the loader, not the command, is missing', {
  skip: process.platform !== 'linux' || !elf || elf.indexOf(LOADER) < 0 ? `no ${LOADER} in true here` : false,
}, async (t) => {
  const dir = makeWorkspace(t);
  const copy = Buffer.from(elf);
  copy.write('/lib64/ld-linux-x86-64.so.X', copy.indexOf(LOADER), 'latin1');
  fs.writeFileSync(path.join(dir, 'tool'), copy, { mode: 0o755 });
  const result = await loopLock(['run', dir, '--', './tool'], { cwd: dir });
  assert.equal(result.code, 127);
  assert.match(result.stderr, /cannot start \.\/tool: it exists, but the loader it needs \(its ELF interpreter\) was not found \(ENOENT\)/);
});
