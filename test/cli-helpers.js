'use strict';
// What the CLI tests share: the command run as users run it, `node
// dist/cli.js` in a child process, and a holder in another process.
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { startChild } = require('./helpers');

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const NODE = process.execPath;

/**
 * Starts a process and collects its output. `exited` resolves with its exit
 * code, signal and output; `printed(stream, text)` once it has printed text.
 */
function start(t, command, args, env = process.env) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  t.after(() => child.kill('SIGKILL'));
  const output = { stdout: '', stderr: '' };
  const waiters = [];
  for (const stream of ['stdout', 'stderr']) {
    child[stream].setEncoding('utf8').on('data', (chunk) => {
      output[stream] += chunk;
      for (const waiter of waiters) waiter();
    });
  }
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, ...output }));
  });
  const printed = (stream, text) =>
    new Promise((resolve, reject) => {
      waiters.push(() => output[stream].includes(text) && resolve(output[stream]));
      exited.then(() => {
        reject(new Error(`exited without printing ${JSON.stringify(text)}: ${JSON.stringify(output)}`));
      });
    });
  return { child, exited, printed };
}

/** Runs the CLI with stdin closed; `exited` resolves with {code, signal, stdout, stderr}. */
function loopLock(t, ...args) {
  return loopLockWithEnv(t, process.env, ...args);
}

function loopLockWithEnv(t, env, ...args) {
  const run = start(t, NODE, [CLI, ...args], env);
  run.child.stdin.end();
  return run;
}

/** Holds `dir`'s lock from another process until `release()` or the end of the test. */
async function holdLock(t, dir, prompt) {
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace: dir, prompt, mode: 'try' })]);
  const { pid, lockPath } = await holder.next('locked');
  return {
    pid,
    lockPath,
    release: async () => {
      holder.send('release');
      await holder.next('released');
    },
  };
}

module.exports = { CLI, NODE, holdLock, loopLock, loopLockWithEnv, start };
