#!/usr/bin/env node
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCommandLine, type RunCommand, type StatusCommand, UsageError } from './cli-args.js';
import { defaultPrompt, holderLines, type ShownHolder, terminalJson, terminalText, watchLine } from './cli-format.js';
import { CommandRun } from './cli-run.js';
import { FORWARDED_SIGNALS } from './cli-signals.js';
import { AlreadyLockedError, LockError } from './errors.js';
import type { LockGuard } from './guard.js';
import { LoopLock } from './loop-lock.js';
import type { LockMetadata } from './metadata.js';
import { native } from './native.js';
import { type LockOptions, lockPathOf } from './options.js';

/** Exit codes, as documented in the help text. */
const Exit = {
  Ok: 0,
  Held: 1,
  Usage: 2,
  LockFailure: 74, // EX_IOERR
  Conflict: 75, // EX_TEMPFAIL: try again later
  // run: 126, 127 and 128+N for the command: see lib/cli-run.ts
} as const;

const USAGE = `Usage:
  loop-lock status [DIR] [--json] [--watch] [--lock-file PATH]
  loop-lock run [DIR] [--prompt TEXT] [--wait] [--timeout SECONDS]
                [--lock-file PATH] [--conflict-exit-code N] -- COMMAND [ARGS...]
  loop-lock --help | --version

The loop lock of a workspace is flock() on DIR/.ralph/loop.lock. Without DIR,
the workspace is found as ralph finds it: $RALPH_WORKSPACE_ROOT when set and
not blank, else the nearest directory from the current one up that holds a
.ralph directory or a .git entry, else the current directory. Every loop-lock
user and the Rust ralph-core LoopLock share it: at most one holder at a time.

Commands:
  status  Say whether the lock is held, by which pid, since when and with
          what prompt, and whether that pid is alive on this host.
  run     Take the lock, run COMMAND (no shell, stdio inherited, in the
          current directory) in a process group of its own, forward to
          that group every signal that would end this process and can be
          caught (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, ...;
          not SIGKILL), and exit with COMMAND's exit code once COMMAND and
          whatever it left in its group (sent SIGTERM) have ended.
          COMMAND inherits the locked descriptor as fd 3, as with flock(1):
          if run is killed, COMMAND's process tree keeps the lock until it
          ends. The lock records COMMAND's pid. DIR must exist. On Windows,
          Ctrl-C and Ctrl-Break reach COMMAND from the console and run
          waits for it to exit; killing run kills COMMAND too.

Options:
  --lock-file PATH         lock file, relative to DIR (default .ralph/loop.lock)
  --json                   status: print {locked, holder, lockPath} as JSON;
                           holder is {pid, started, prompt, alive} or null
  --watch                  status: print the state, then a line (with --json,
                           a JSON line) per change, until interrupted; exit 0
  --prompt TEXT            run: what the holder does, shown by status
                           (default: the command line, cut to 200 characters)
  --wait                   run: wait for the lock when it is held
  --timeout SECONDS        run: wait at most this long (implies --wait)
  --conflict-exit-code N   run: exit code when the lock is held or the wait
                           times out (default ${Exit.Conflict})
  -h, --help               show this help
  --version                show the version

Exit codes:
  0       status: the lock is free (also --help, --version)
  1       status: the lock is held
  2       usage error: unknown option, missing command, DIR missing
  ${Exit.LockFailure}      the lock file could not be opened or locked (permission,
          I/O error, a symlink, hard link or directory in its place,
          no flock())
  ${Exit.Conflict}      run: the lock is held, or --timeout expired (see
          --conflict-exit-code)
  126     run: COMMAND could not be executed
  127     run: COMMAND was not found
  128+N   run: COMMAND was killed by signal N (143 for SIGTERM)
  other   run: COMMAND's own exit code
`;

const WINDOWS = process.platform === 'win32';

/** An error that ends the command with a message on stderr and a given exit code. */
class Failure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Whether `pid` names a live process on this host. EPERM means it exists but
 * belongs to someone else. Outside 1..2^31-1 no process can have it, and
 * kill() would read 0 as "my process group".
 */
function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeHolder(holder: LockMetadata | null): ShownHolder | null {
  return holder === null ? null : { ...holder, alive: isAlive(holder.pid) };
}

/** Refuses a DIR that is not an existing directory: `run` would otherwise create a workspace from a typo. */
function checkWorkspace(dir: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Failure(`workspace directory '${dir}' does not exist (loop-lock does not create it)`, Exit.Usage);
    }
    if (code === 'ENOTDIR') throw new Failure(`workspace '${dir}' is not a directory`, Exit.Usage);
    throw new Failure(`cannot use workspace '${dir}': ${(error as Error).message}`, Exit.LockFailure);
  }
  if (!isDirectory) throw new Failure(`workspace '${dir}' is not a directory`, Exit.Usage);
}

/** A command whose workspace is known: DIR as given, or the one ralph would find. */
type Located<Command extends StatusCommand | RunCommand> = Command & { dir: string };

function located<Command extends StatusCommand | RunCommand>(command: Command): Located<Command> {
  return { ...command, dir: command.dir ?? LoopLock.findWorkspace() };
}

function lockOptions(lockFile: string | undefined): LockOptions {
  return lockFile === undefined ? {} : { lockFile };
}

function status(command: Located<StatusCommand>): number {
  checkWorkspace(command.dir);
  const options = lockOptions(command.lockFile);
  const lockPath = lockPathOf(command.dir, options);
  const { locked, holder } = LoopLock.status(command.dir, options);
  const described = locked ? describeHolder(holder) : null;
  if (command.json) {
    const json = {
      locked,
      holder: described === null ? null : { ...described, started: described.started.toISOString() },
      lockPath,
    };
    process.stdout.write(`${terminalJson(json)}\n`);
  } else {
    const lines = locked ? [`${lockPath}: held`, ...holderLines(described)] : [`${lockPath}: free`];
    process.stdout.write(terminalText(`${lines.join('\n')}\n`));
  }
  return locked ? Exit.Held : Exit.Ok;
}

/** `status --watch`: a line per state until SIGINT, SIGTERM or SIGHUP, then exit 0. */
async function watchStatus(command: Located<StatusCommand>): Promise<number> {
  checkWorkspace(command.dir);
  const options = lockOptions(command.lockFile);
  const lockPath = lockPathOf(command.dir, options);
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  for (const signal of FORWARDED_SIGNALS) process.on(signal, stop);
  try {
    if (!command.json) process.stderr.write(terminalText(`loop-lock: watching ${lockPath} (Ctrl-C to stop)\n`));
    for await (const { locked, holder } of LoopLock.watch(command.dir, { ...options, signal: controller.signal })) {
      const described = locked ? describeHolder(holder) : null;
      if (command.json) {
        const shown = described === null ? null : { ...described, started: described.started.toISOString() };
        process.stdout.write(`${terminalJson({ locked, holder: shown, lockPath }, 0)}\n`);
      } else {
        process.stdout.write(terminalText(`${watchLine(locked, described)}\n`));
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, stop);
  }
  return Exit.Ok;
}

function warn(lines: string[]): void {
  process.stderr.write(terminalText(`loop-lock: ${lines.join('\n')}\n`));
}

/**
 * Windows: a `run` killed outright (Task Manager, taskkill /F, a parent's
 * TerminateProcess) cannot pass anything on, so the command it started is
 * ended with it by a Job Object rather than left running without the lock.
 * Where that fails (a job that forbids it), say so and run anyway.
 */
function tieChildrenToThisProcess(): void {
  try {
    native().killChildrenOnExit();
  } catch (error) {
    warn([`the command may outlive a killed loop-lock run: ${(error as Error).message}`]);
  }
}

/** Takes the lock as the options say, or throws a `Failure` carrying the conflict exit code. */
async function takeLock(command: Located<RunCommand>, prompt: string, conflictExitCode: number): Promise<LockGuard> {
  const options = lockOptions(command.lockFile);
  try {
    return LoopLock.tryAcquire(command.dir, prompt, options);
  } catch (error) {
    if (!(error instanceof AlreadyLockedError)) throw error;
    const lockPath = lockPathOf(command.dir, options);
    const holder = holderLines(describeHolder(error.holder));
    if (!command.wait) {
      throw new Failure(
        [`${lockPath} is held; not running the command (use --wait to wait for it)`, ...holder].join('\n'),
        conflictExitCode,
      );
    }
    const limit = command.timeoutMs === undefined ? '' : ` (at most ${command.timeoutMs / 1000}s)`;
    warn([`${lockPath} is held; waiting${limit}`, ...holder]);
  }
  try {
    return await LoopLock.acquire(command.dir, prompt, { ...options, timeout: command.timeoutMs });
  } catch (error) {
    if (!(error instanceof LockError) || error.code !== 'ETIMEDOUT') throw error;
    throw new Failure(
      `gave up after ${(command.timeoutMs as number) / 1000}s: ${lockPathOf(command.dir, options)} is still held`,
      conflictExitCode,
    );
  }
}

async function run(command: Located<RunCommand>): Promise<number> {
  checkWorkspace(command.dir);
  const prompt = command.prompt ?? defaultPrompt(command.command, command.args);
  const guard = await takeLock(command, prompt, command.conflictExitCode ?? Exit.Conflict);
  try {
    if (WINDOWS) tieChildrenToThisProcess();
    const code = await new CommandRun(command.command, command.args, guard, prompt, warn).run();
    // Someone ran `rm -rf .ralph` or `git clean -fdx` meanwhile: another
    // process could have taken a new lock file and run alongside.
    const state = guard.state();
    if (state === 'removed' || state === 'replaced') {
      warn([`${guard.lockPath} was ${state} while the command ran, so the lock did not exclude others`]);
    }
    return code;
  } finally {
    guard.release();
  }
}

function version(): string {
  const manifest: unknown = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
  return (manifest as { version: string }).version;
}

async function main(argv: readonly string[]): Promise<number> {
  try {
    const invocation = parseCommandLine(argv);
    switch (invocation.kind) {
      case 'help':
        process.stdout.write(USAGE);
        return Exit.Ok;
      case 'version':
        process.stdout.write(`loop-lock ${version()}\n`);
        return Exit.Ok;
      case 'status':
        return invocation.watch ? await watchStatus(located(invocation)) : status(located(invocation));
      case 'run':
        return await run(located(invocation));
    }
  } catch (error) {
    if (error instanceof UsageError) {
      warn([error.message, "Try 'loop-lock --help' for more information."]);
      return Exit.Usage;
    }
    if (error instanceof Failure) {
      warn([error.message]);
      return error.exitCode;
    }
    warn([error instanceof LockError ? error.message : String((error as Error).stack ?? error)]);
    return Exit.LockFailure;
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
