import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { missingPart } from './cli-command.js';
import { FORWARDED_SIGNALS } from './cli-signals.js';
import { handleOf, type LockGuard } from './guard.js';
import { encodePrompt } from './metadata.js';
import { native } from './native.js';
import { groupRunning, signalGroup } from './process-group.js';

const WINDOWS = process.platform === 'win32';

/** The exit codes `run` reports for its command, as shells do. */
const CommandExit = { CannotExecute: 126, NotFound: 127, SignalBase: 128 } as const;

// Windows has no signals to forward: Ctrl-C and Ctrl-Break reach every
// process on the console, the command included, and process.kill() would
// end the command at once (TerminateProcess) rather than signal it; so
// `run` only outlives them, waiting for the command to exit. SIGHUP is the
// console window closing.
const WINDOWS_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGBREAK', 'SIGHUP'];

// The command runs in a session of its own (see CommandRun), so what the
// terminal sends to its foreground job reaches `run` alone: a resize and a
// resume are passed on too, and a stop (Ctrl-Z) stops the command's group
// and then `run` itself, as it would have stopped both.
const TERMINAL_SIGNALS: readonly NodeJS.Signals[] = ['SIGWINCH', 'SIGCONT', 'SIGTSTP'];

/** Where a command is in its life under the lock. */
type RunState = 'running' | 'ending' | 'done';

/**
 * One command run under a held lock, on POSIX for its whole process tree:
 *
 * - The command inherits the lock's descriptor (as fd 3, as `flock(1)`
 *   hands its own), so the lock lasts as long as any process of its tree
 *   holds it, even if `run` is killed outright.
 * - It runs in a process group of its own (a new session: Node starts
 *   children no other way), and every signal `run` forwards goes to that
 *   group, so `sh -c 'work & wait'` ends whole.
 * - The record names the command, the group's leader, once it has started
 *   (so its start precedes the record's time): `status` names a live
 *   process while it runs, `run` killed or not.
 * - `running` to `ending` when the command exits: processes it left in
 *   its group get SIGTERM, and the record names `run` until the last of
 *   them has exited. Then `done`, with the command's exit code.
 *
 * On Windows the command is spawned plainly, inside `run`'s Job Object.
 */
export class CommandRun {
  readonly #command: string;
  readonly #args: readonly string[];
  readonly #guard: LockGuard;
  readonly #prompt: string;
  readonly #warn: (lines: string[]) => void;
  readonly #signals: readonly NodeJS.Signals[] = WINDOWS ? WINDOWS_SIGNALS : [...FORWARDED_SIGNALS, ...TERMINAL_SIGNALS];
  readonly #forward = (signal: NodeJS.Signals): void => this.#onSignal(signal);
  #state: RunState = 'running';
  #group: number | undefined;
  #finish: (code: number) => void = () => {};

  constructor(command: string, args: readonly string[], guard: LockGuard, prompt: string, warn: (lines: string[]) => void) {
    this.#command = command;
    this.#args = args;
    this.#guard = guard;
    this.#prompt = prompt;
    this.#warn = warn;
  }

  /** Runs the command to the end of its tree; resolves to the exit code to report. */
  run(): Promise<number> {
    return new Promise((resolve) => {
      this.#finish = resolve;
      // Listening before spawn() means a signal that arrives while the child
      // starts is handled (once spawn() has returned), not fatal to this process.
      for (const signal of this.#signals) process.on(signal, this.#forward);
      let child: ChildProcess;
      try {
        child = spawn(this.#command, this.#args, { stdio: this.#stdio(), detached: !WINDOWS });
      } catch (error) {
        return this.#cannotRun(error as NodeJS.ErrnoException);
      }
      child.on('error', (error) => this.#cannotRun(error));
      child.on('exit', (code, signal) => {
        void this.#ended(code ?? CommandExit.SignalBase + (signal === null ? 0 : constants.signals[signal]));
      });
      if (child.pid !== undefined && !WINDOWS) {
        this.#group = child.pid;
        this.#nameHolder(child.pid);
      }
    });
  }

  /** stdin, stdout and stderr inherited; on POSIX the lock's descriptor as fd 3. */
  #stdio(): StdioOptions {
    const handle = handleOf(this.#guard);
    if (WINDOWS || handle === null) return 'inherit';
    try {
      return ['inherit', 'inherit', 'inherit', native().descriptor(handle)];
    } catch (error) {
      this.#warn([`the command does not hold the lock itself: ${(error as Error).message}`]);
      return 'inherit';
    }
  }

  /** Rewrites the record to name `pid` as the holder (the lock is the same). */
  #nameHolder(pid: number): void {
    const handle = handleOf(this.#guard);
    if (handle === null) return;
    try {
      // Unmarked: the descriptor is the command's tree's too, and outlives
      // `run` and the command, which a mark naming either would outlive.
      native().claim(handle, pid, encodePrompt(this.#prompt, this.#guard.lockPath, pid), false);
    } catch (error) {
      this.#warn([`cannot name pid ${pid} in ${this.#guard.lockPath}: ${(error as Error).message}`]);
    }
  }

  #onSignal(signal: NodeJS.Signals): void {
    if (this.#group === undefined) return;
    this.#signal(signal);
    if (signal === 'SIGTSTP') process.kill(process.pid, 'SIGSTOP');
  }

  /** Signals the command's process group (none of it left is no failure). */
  #signal(signal: NodeJS.Signals): void {
    try {
      signalGroup(this.#group as number, signal);
    } catch (error) {
      this.#warn([`cannot send ${signal} to the command's process group: ${(error as Error).message}`]);
    }
  }

  /** The command exited: ends what it left in its group, then reports its code. */
  async #ended(code: number): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'ending';
    const group = this.#group;
    if (group !== undefined && groupRunning(group)) {
      this.#nameHolder(process.pid);
      this.#signal('SIGTERM');
      for (let ms = 1; groupRunning(group); ms = Math.min(ms * 2, 100)) await sleep(ms);
    }
    this.#done(code);
  }

  #cannotRun(error: NodeJS.ErrnoException): void {
    const notFound = error.code === 'ENOENT';
    const what = notFound ? missingPart(this.#command) : `cannot execute: ${this.#command}`;
    this.#warn([`${what} (${error.code ?? error.message})`]);
    this.#done(notFound ? CommandExit.NotFound : CommandExit.CannotExecute);
  }

  #done(code: number): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    for (const signal of this.#signals) process.off(signal, this.#forward);
    this.#finish(code);
  }
}
