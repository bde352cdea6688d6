'use strict';
// loop-lock status --watch: a line per change seen by LoopLock.watch(), until a signal.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { test } = require('node:test');
const { lockPathIn, makeWorkspace, startChild, until } = require('./helpers');

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const WINDOWS = process.platform === 'win32';

/** Starts the holder fixture on `workspace`; resolves once it holds. */
async function startHolder(t, workspace, prompt) {
  const holder = startChild(t, 'holder.js', [JSON.stringify({ workspace, prompt, mode: 'try' })]);
  await holder.next('locked');
  return holder;
}

/** Starts `loop-lock ...args`; `lines` fills with its stdout lines. */
function startCli(t, args) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  require('node:readline')
    .createInterface({ input: child.stdout })
    .on('line', (line) => lines.push(line));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  t.after(() => child.kill('SIGKILL'));
  return { child, lines, exited };
}

test('loop-lock status --watch prints a line per change, --json a JSON line, until SIGINT or SIGTERM (exit 0)', async (t) => {
  const workspace = makeWorkspace(t);
  const cli = startCli(t, ['status', '--watch', '--json', workspace]);
  const states = () => cli.lines.map((line) => JSON.parse(line));
  await until(() => cli.lines.length >= 1, 'the first line');
  assert.deepEqual(states()[0], { locked: false, holder: null, lockPath: lockPathIn(workspace) });

  const holder = await startHolder(t, workspace, 'seen by the CLI');
  await until(() => states().some((state) => state.holder?.pid === holder.pid), 'the holder line');
  const line = states().find((state) => state.holder?.pid === holder.pid);
  assert.equal(line.holder.prompt, 'seen by the CLI');
  assert.equal(line.holder.alive, true);
  holder.send('release');
  await until(() => cli.lines.length >= 3 && states().at(-1).locked === false, 'the release line');
  await interrupt(cli, 'SIGINT');

  const text = startCli(t, ['status', '--watch', workspace]);
  await until(() => text.lines.length >= 1, 'the text line');
  assert.match(text.lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z free$/);
  await interrupt(text, 'SIGTERM');
});

/** Sends `signal` to a `status --watch`, which exits 0 (Windows has no signals: it ends with exit code 1). */
async function interrupt(cli, signal) {
  // process.kill, not child.kill: Deno reports a child it was asked to
  // kill as killed by that signal, even when the child caught it and exited.
  process.kill(cli.child.pid, signal);
  const exit = await cli.exited;
  if (!WINDOWS) assert.deepEqual(exit, { code: 0, signal: null });
}
