'use strict';
// The loop-lock command, run as users run it: `node dist/cli.js` in a child
// process, against locks held by other processes (fixtures/holder.js).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { LoopLock } = require('../dist');
const { FIXTURES, UNDER_WINE, lockPathIn, makeWorkspace: workspace, until } = require('./helpers');
const { NODE, holdLock, loopLock, loopLockWithEnv } = require('./cli-helpers');

const REPORT_STATUS = join(FIXTURES, 'cli-report-status.js');
const CONFLICT = 75;

test('status of a workspace nobody has locked exits 0 and says free, in text and in JSON', async (t) => {
  const dir = workspace(t);
  const text = await loopLock(t, 'status', dir).exited;
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout, `${lockPathIn(dir)}: free\n`);

  const json = await loopLock(t, 'status', dir, '--json').exited;
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), { locked: false, holder: null, lockPath: lockPathIn(dir) });
});

test('status after the holder released says free, though the old record stays in the file', async (t) => {
  const dir = workspace(t);
  const holder = await holdLock(t, dir, 'finished task');
  await holder.release();
  assert.equal(LoopLock.readExisting(dir).prompt, 'finished task');

  const json = await loopLock(t, 'status', dir, '--json').exited;
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), { locked: false, holder: null, lockPath: lockPathIn(dir) });
});

test('status of a lock held by another process exits 1 and gives its pid, start, prompt and liveness', async (t) => {
  const dir = workspace(t);
  const holder = await holdLock(t, dir, 'refactor the parser');
  const { started } = LoopLock.status(dir).holder;

  const text = await loopLock(t, 'status', dir).exited;
  assert.equal(text.code, 1, text.stderr);
  const lines = text.stdout.split('\n');
  assert.equal(lines[0], `${holder.lockPath}: held`);
  assert.equal(lines[1], `  pid:    ${holder.pid} (alive)`);
  assert.match(lines[2], new RegExp(`^  since:  ${started.toISOString()} \\(\\d+s ago\\)$`));
  assert.equal(lines[3], '  prompt: refactor the parser');

  const json = await loopLock(t, 'status', dir, '--json').exited;
  assert.equal(json.code, 1, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), {
    locked: true,
    holder: { pid: holder.pid, started: started.toISOString(), prompt: 'refactor the parser', alive: true },
    lockPath: holder.lockPath,
  });
});

// Whoever can write the lock file chooses the prompt that status and run
// print on someone else's terminal: a window title (OSC), colours (CSI),
// the one-character C1 CSI and a right-to-left override (which would make
// what follows read backwards) must reach it as text, not as commands.
const HOSTILE_PROMPT =
  'title \x1b]0;pwned\x07 colour \x1b[31mred\x1b[0m c1 \u009b2J del \x7f nul \0 bidi \u202e4321\u202c \u2067x\u2069 end';
const HOSTILE_SHOWN = String.raw`title \x1b]0;pwned\x07 colour \x1b[31mred\x1b[0m c1 \x9b2J del \x7f nul \x00 bidi \u202e4321\u202c \u2067x\u2069 end`;
const CONTROL_CHARACTER = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

test('status and run print control characters in the prompt escaped; --json keeps the exact text, escaped by JSON', async (t) => {
  const dir = workspace(t);
  const holder = await holdLock(t, dir, HOSTILE_PROMPT);

  const text = await loopLock(t, 'status', dir).exited;
  assert.equal(text.code, 1, text.stderr);
  assert.doesNotMatch(text.stdout, CONTROL_CHARACTER);
  assert.equal(text.stdout.split('\n')[3], `  prompt: ${HOSTILE_SHOWN}`);

  const json = await loopLock(t, 'status', dir, '--json').exited;
  assert.equal(json.code, 1, json.stderr);
  assert.doesNotMatch(json.stdout, CONTROL_CHARACTER);
  assert.equal(JSON.parse(json.stdout).holder.prompt, HOSTILE_PROMPT);

  const run = await loopLock(t, 'run', dir, '--', NODE, '-e', '').exited;
  assert.equal(run.code, CONFLICT);
  assert.doesNotMatch(run.stderr, CONTROL_CHARACTER);
  assert.equal(run.stderr.split('\n')[0], `loop-lock: ${holder.lockPath} is held; not running the command (use --wait to wait for it)`);
  assert.equal(run.stderr.split('\n')[3], `  prompt: ${HOSTILE_SHOWN}`);
});

test('status of a lock whose record names a process that runs no more shows no holder', async (t) => {
  const dir = workspace(t);
  // pid_max itself is never given to a process; Windows gives only multiples of 4.
  const unusedPid =
    process.platform === 'win32' ? 2 ** 31 - 2 : Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const holder = await holdLock(t, dir, 'orphaned');
  // Rewritten in place: the lock stays on the file, the record names a gone process.
  const record = { pid: unusedPid, started: new Date().toISOString(), prompt: 'orphaned' };
  writeFileSync(holder.lockPath, JSON.stringify(record, null, 2));

  const text = await loopLock(t, 'status', dir).exited;
  assert.equal(text.code, 1, text.stderr);
  assert.match(text.stdout, /: held\n {2}holder: unknown/);
  assert.doesNotMatch(text.stdout, new RegExp(String(unusedPid)));

  const json = await loopLock(t, 'status', dir, '--json').exited;
  assert.equal(JSON.parse(json.stdout).locked, true);
  assert.equal(JSON.parse(json.stdout).holder, null);
});

test('status --lock-file looks at that file, relative to the workspace', async (t) => {
  const dir = workspace(t);
  await holdLock(t, dir, 'default file');
  const other = await loopLock(t, 'status', dir, '--lock-file', 'other.lock', '--json').exited;
  assert.equal(other.code, 0, other.stderr);
  assert.deepEqual(JSON.parse(other.stdout), { locked: false, holder: null, lockPath: join(dir, 'other.lock') });
});

test('status of a lock path that is a symlink exits 74 and names the path', async (t) => {
  if (UNDER_WINE) return t.skip('Wine shows a symlink as the file it points to, not as a reparse point');
  const dir = workspace(t);
  mkdirSync(join(dir, '.ralph'));
  symlinkSync(join(dir, 'elsewhere'), lockPathIn(dir));
  const result = await loopLock(t, 'status', dir).exited;
  assert.equal(result.code, 74);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^loop-lock: ELOOP: .*symbolic link/);
  assert.ok(result.stderr.includes(lockPathIn(dir)));
});

test('run holds the lock, names its command (Windows: itself) in the record, with the command line as prompt, and releases it after', async (t) => {
  const dir = workspace(t);
  const run = loopLock(t, 'run', dir, '--', NODE, REPORT_STATUS, dir, '0', "it's a test");
  const result = await run.exited;
  assert.equal(result.code, 0, result.stderr);
  const seen = JSON.parse(result.stdout);
  assert.equal(seen.locked, true);
  assert.equal(seen.holder.pid, process.platform === 'win32' ? run.child.pid : seen.pid);
  const quoted = process.platform === 'win32' ? `"it's a test"` : `'it'\\''s a test'`;
  const commandLine = Array.from(`${NODE} ${REPORT_STATUS} ${dir} 0 ${quoted}`);
  // Cut to 200 characters where the paths are long (see the next test).
  const prompt = commandLine.length <= 200 ? commandLine.join('') : `${commandLine.slice(0, 199).join('')}…`;
  assert.equal(seen.holder.prompt, prompt);
  assert.equal(result.stderr, '');
  assert.equal(LoopLock.isLocked(dir), false);
});

test('run --prompt records the given prompt', async (t) => {
  const dir = workspace(t);
  const result = await loopLock(t, 'run', dir, '--prompt', 'nightly build', '--', NODE, REPORT_STATUS, dir, '0').exited;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).holder.prompt, 'nightly build');
});

test('run cuts a long default prompt to 200 characters, the last one an ellipsis', async (t) => {
  const dir = workspace(t);
  const long = '😀'.repeat(300);
  // A surrogate pair cut in half would make the prompt unwritable.
  const result = await loopLock(t, 'run', dir, '--', NODE, REPORT_STATUS, dir, '0', long).exited;
  assert.equal(result.code, 0, result.stderr);
  const prompt = JSON.parse(result.stdout).holder.prompt;
  const expected = `${NODE} ${REPORT_STATUS} ${dir} 0 ${process.platform === 'win32' ? '' : "'"}${long}`;
  assert.equal(prompt, `${Array.from(expected).slice(0, 199).join('')}…`);
});

test('run --lock-file locks that file instead of .ralph/loop.lock', async (t) => {
  const dir = workspace(t);
  const env = { ...process.env, LOCK_FILE: 'other.lock' };
  const args = ['run', dir, '--lock-file', 'other.lock', '--', NODE, REPORT_STATUS, dir, '0'];
  const result = await loopLockWithEnv(t, env, ...args).exited;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).locked, true);
  assert.equal(existsSync(lockPathIn(dir)), false);
});

test("run exits with the command's exit code and releases the lock", async (t) => {
  const dir = workspace(t);
  const result = await loopLock(t, 'run', dir, '--', NODE, REPORT_STATUS, dir, '3').exited;
  assert.equal(result.code, 3, result.stderr);
  assert.equal(LoopLock.isLocked(dir), false);
});

test('run exits 128 + N when the command is killed by signal N', async (t) => {
  if (process.platform === 'win32') return t.skip('Windows has no signals: process.kill() ends a process with exit code 1');
  const dir = workspace(t);
  const result = await loopLock(t, 'run', dir, '--', NODE, '-e', "process.kill(process.pid, 'SIGTERM')").exited;
  assert.equal(result.code, 143, result.stderr);
  assert.equal(result.signal, null);
  assert.equal(LoopLock.isLocked(dir), false);
});

test('run exits 127 for a command that does not exist and 126 for one that cannot be executed', async (t) => {
  const dir = workspace(t);
  const missing = await loopLock(t, 'run', dir, '--', join(dir, 'no-such-command')).exited;
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /^loop-lock: command not found: .*no-such-command/);

  const notExecutable = join(dir, 'data.txt');
  writeFileSync(notExecutable, 'not a program');
  const denied = await loopLock(t, 'run', dir, '--', notExecutable).exited;
  assert.equal(denied.code, 126);
  // libuv names a file Windows cannot run UNKNOWN.
  const code = process.platform === 'win32' ? 'UNKNOWN' : 'EACCES';
  assert.match(denied.stderr, new RegExp(`^loop-lock: cannot execute: .*data\\.txt \\(${code}\\)`));
  assert.equal(LoopLock.isLocked(dir), false);
});

test('run warns when the lock file was removed while the command ran, and keeps its exit code', async (t) => {
  if (process.platform === 'win32') {
    return t.skip("Windows keeps a deleted file's name until its last handle closes: .ralph cannot be removed while held");
  }
  const dir = workspace(t);
  const script = `require('fs').rmSync(${JSON.stringify(join(dir, '.ralph'))}, { recursive: true }); process.exit(4)`;
  const result = await loopLock(t, 'run', dir, '--', NODE, '-e', script).exited;
  assert.equal(result.code, 4);
  assert.equal(
    result.stderr,
    `loop-lock: ${lockPathIn(dir)} was removed while the command ran, so the lock did not exclude others\n`,
  );
});

test('run on a held lock without --wait exits 75, names the holder and does not run the command', async (t) => {
  const dir = workspace(t);
  const holder = await holdLock(t, dir, 'the other loop');
  const marker = join(dir, 'ran');
  const script = `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`;
  const result = await loopLock(t, 'run', dir, '--', NODE, '-e', script).exited;
  assert.equal(result.code, CONFLICT);
  assert.equal(existsSync(marker), false);
  const lines = result.stderr.split('\n');
  assert.equal(lines[0], `loop-lock: ${holder.lockPath} is held; not running the command (use --wait to wait for it)`);
  assert.equal(lines[1], `  pid:    ${holder.pid} (alive)`);
  assert.match(lines[2], /^ {2}since: {2}\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)$/);
  assert.equal(lines[3], '  prompt: the other loop');
});

test('--conflict-exit-code sets the exit code of a conflict', async (t) => {
  const dir = workspace(t);
  await holdLock(t, dir, 'the other loop');
  const result = await loopLock(t, 'run', dir, '--conflict-exit-code', '9', '--', NODE, '-e', '').exited;
  assert.equal(result.code, 9);
  assert.match(result.stderr, /is held; not running the command/);
});

test('run --wait takes the lock once the holder releases it, then runs the command', async (t) => {
  const dir = workspace(t);
  const holder = await holdLock(t, dir, 'the other loop');
  const run = loopLock(t, 'run', dir, '--wait', '--', NODE, REPORT_STATUS, dir, '0');
  await run.printed('stderr', `${holder.lockPath} is held; waiting\n  pid:    ${holder.pid} (alive)`);
  assert.equal(run.child.exitCode, null, 'still waiting while the lock is held');
  await holder.release();

  const result = await run.exited;
  assert.equal(result.code, 0, result.stderr);
  const seen = JSON.parse(result.stdout);
  assert.equal(seen.holder.pid, process.platform === 'win32' ? run.child.pid : seen.pid);
  assert.equal(LoopLock.isLocked(dir), false);
});

test('run --timeout gives up with the conflict exit code when the lock stays held', async (t) => {
  const dir = workspace(t);
  const holder = await holdLock(t, dir, 'the other loop');
  const marker = join(dir, 'ran');
  const script = `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`;
  const result = await loopLock(t, 'run', dir, '--timeout', '0.2', '--', NODE, '-e', script).exited;
  assert.equal(result.code, CONFLICT);
  assert.equal(existsSync(marker), false);
  assert.match(result.stderr, /is held; waiting \(at most 0\.2s\)\n/);
  assert.ok(result.stderr.endsWith(`loop-lock: gave up after 0.2s: ${holder.lockPath} is still held\n`), result.stderr);
  assert.equal(LoopLock.status(dir).holder.pid, holder.pid);

  const custom = await loopLock(t, 'run', dir, '--timeout', '0', '--conflict-exit-code', '0', '--', NODE, '-e', script)
    .exited;
  assert.equal(custom.code, 0);
  assert.equal(existsSync(marker), false);
});

test('run refuses a workspace that does not exist, exits 2 and creates nothing', async (t) => {
  const missing = join(workspace(t), 'missing');
  const result = await loopLock(t, 'run', missing, '--', NODE, '-e', '').exited;
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr,
    `loop-lock: workspace directory '${missing}' does not exist (loop-lock does not create it)\n`,
  );
  assert.equal(existsSync(missing), false);

  const status = await loopLock(t, 'status', missing).exited;
  assert.equal(status.code, 2);
  assert.match(status.stderr, /does not exist/);
});

test('--help prints the usage and the exit codes on stdout and exits 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['run', '--help'], ['status', '-h']]) {
    const result = await loopLock(t, ...args).exited;
    assert.equal(result.code, 0, args.join(' '));
    assert.match(result.stdout, /^Usage:\n {2}loop-lock status \[DIR\]/);
    assert.match(result.stdout, /\nExit codes:\n/);
    assert.match(result.stdout, /\n {2}75 +run: the lock is held/);
    assert.equal(result.stderr, '');
  }
});

test('--help after -- belongs to the command', async (t) => {
  const dir = workspace(t);
  const result = await loopLock(t, 'run', dir, '--', NODE, REPORT_STATUS, dir, '5', '--help').exited;
  assert.equal(result.code, 5, result.stderr);
});

test('--version prints the version in package.json', async (t) => {
  const { version } = require('../package.json');
  const result = await loopLock(t, '--version').exited;
  assert.equal(result.code, 0);
  assert.equal(result.stdout, `loop-lock ${version}\n`);
});

const usageErrors = [
  [[], 'missing command (status or run)'],
  [['lock'], "unknown command 'lock' (expected status or run)"],
  [['--frob'], "unknown option '--frob'"],
  [['status', '--wait'], "unknown option '--wait' for 'status'"],
  [['status', 'a', 'b'], "unexpected argument 'b' for 'status'"],
  [['status', '--json=yes'], "option '--json' takes no value"],
  [['run', '-x', '--', 'true'], "unknown option '-x' for 'run'"],
  [['run', '.'], "missing command: put it after '--'"],
  [['run', '.', 'true'], "unexpected argument 'true' for 'run': put the command after '--'"],
  [['run', '.', '--'], "missing command after '--'"],
  [['run', '--prompt'], "option '--prompt' needs a value"],
  [['run', '--prompt', '--wait', '--', 'true'], "option '--prompt' needs a value"],
  [['run', '--timeout', 'soon', '--', 'true'], "option '--timeout' takes a number of seconds from 0 to 2147483.647"],
  [['run', '--timeout', '3000000', '--', 'true'], "option '--timeout' takes a number of seconds"],
  [['run', '--conflict-exit-code', '256', '--', 'x'], "option '--conflict-exit-code' takes an exit code from 0 to 255"],
  [['run', '--lock-file=', '--', 'true'], "option '--lock-file' must not be empty"],
  [['status', ''], 'DIR must not be empty'],
];

for (const [args, message] of usageErrors) {
  test(`usage error, exit 2: loop-lock ${args.map((arg) => JSON.stringify(arg)).join(' ')}`, async (t) => {
    const result = await loopLock(t, ...args).exited;
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.ok(result.stderr.startsWith(`loop-lock: ${message}`), result.stderr);
    assert.ok(result.stderr.endsWith("\nTry 'loop-lock --help' for more information.\n"), result.stderr);
  });
}

test('a file as DIR is a usage error', async (t) => {
  const file = join(workspace(t), 'file');
  writeFileSync(file, '');
  const result = await loopLock(t, 'status', file).exited;
  assert.equal(result.code, 2);
  assert.equal(result.stderr, `loop-lock: workspace '${file}' is not a directory\n`);
});
