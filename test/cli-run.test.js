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
