import { acquireNow, acquireWaiting } from './acquire.js';
import { AsyncAcquire } from './acquire-async.js';
import { AlreadyLockedError } from './errors.js';
import type { LockGuard } from './guard.js';
import { encodePrompt, type LockMetadata } from './metadata.js';
import { native } from './native.js';
import {
  type AcquireOptions,
  LOCK_FILE,
  type LockOptions,
  persistentOf,
  type ReadOptions,
  type Resolved,
  resolveOptions,
  signalOf,
  strictOf,
  type WatchOptions,
} from './options.js';
import { isLocked, type LockStatus, readExisting, statusOf } from './status.js';
import { timedOut, timeoutOf } from './timeout.js';
import { LockWatch } from './watch.js';
import { findWorkspace } from './workspace.js';

/**
 * The loop lock of a workspace: at most one holder at a time across
 * processes and threads, by `flock(LOCK_EX)` on `<workspace>/.ralph/loop.lock`.
 * Interoperates with the Rust `ralph-core` `LoopLock` on the same file.
 */
export class LoopLock {
  /** The lock file's path relative to the workspace root: `.ralph/loop.lock`. */
  static readonly LOCK_FILE: string = LOCK_FILE;

  private constructor() {}

  /**
   * Takes the lock if it is free, without waiting, and writes this process's
   * metadata into it. Creates the lock file and its directory as needed.
   * Probes (`isLocked`, `status`) of other processes do not make it fail: it
   * retries while only they stand in the way, for up to 10 ms.
   *
   * @throws AlreadyLockedError when another holder has it (with `holder`).
   * @throws LockError for I/O failures, with the errno name as `code`.
   */
  static tryAcquire(workspaceRoot: string | URL, prompt: string, options?: LockOptions): LockGuard {
    return acquireNow(resolveOptions(workspaceRoot, options), prompt);
  }

  /**
   * Takes the lock, blocking the calling thread until it is free, like the
   * Rust reference's `acquire_blocking`. In a server or any event-loop code
   * use `acquire()` instead. Refuses with `EDEADLK` when this thread already
   * holds the lock through an unreleased guard. Waits as `acquire()` does
   * (inotify and the backoff poll, following the path when the file or a
   * directory above it moves), but in this thread, and never where nothing
   * can wake it: a worker waiting here still ends on `worker.terminate()`
   * or `process.exit()`.
   */
  static acquireBlocking(workspaceRoot: string | URL, prompt: string, options?: LockOptions): LockGuard {
    return acquireWaiting(resolveOptions(workspaceRoot, options), prompt);
  }

  /**
   * Waits for the lock without blocking the event loop or occupying a libuv
   * threadpool thread: on Linux the event loop watches the lock file with
   * inotify and takes the lock as soon as its holder closes it; a backoff
   * poll (1 ms up to 100 ms) covers holders that unlock without closing,
   * and is the only mechanism on macOS; each of its ticks also checks that
   * the path still names the file, and a wait whose file moved, or was
   * removed or replaced, moves to the file now at the path. A pending
   * acquire keeps the process alive, like any pending I/O.
   *
   * @returns a guard, once the lock is held and its metadata written.
   * @throws (rejects with) `signal.reason` when `options.signal` aborts,
   *   releasing the descriptor and any lock taken in a race with the abort.
   * @throws (rejects with) a `LockError` with code `'ETIMEDOUT'`, naming the
   *   path and the holder when known, once `options.timeout` milliseconds
   *   have passed (0: at the first try that finds the lock held); the wait
   *   is stopped the way an abort stops it. TypeError or RangeError for a
   *   timeout that is not a finite number from 0 up.
   */
  static acquire(workspaceRoot: string | URL, prompt: string, options?: AcquireOptions): Promise<LockGuard> {
    return new Promise((resolve, reject) => {
      const resolved = resolveOptions(workspaceRoot, options);
      const promptJson = encodePrompt(prompt, resolved.lockPath);
      const signal = signalOf(options);
      const timeout = timeoutOf(options);
      if (signal?.aborted) throw signal.reason;
      if (timeout === 0) return resolve(acquireOnce(resolved, prompt));
      new AsyncAcquire(resolved, prompt, promptJson, signal, timeout, resolve, reject).start();
    });
  }

  /**
   * Reads the metadata in the lock file without locking: `null` when there
   * is no lock file, it is empty, or it holds anything that is not a
   * complete record (corrupt, or being written), as the Rust reference's
   * `read_existing` does. The record may be a past holder's: a release
   * leaves it in place. Use `status()` to know who holds it now.
   *
   * @throws LockParseError with `{ strict: true }`, when the file holds
   *   something other than a record.
   */
  static readExisting(workspaceRoot: string | URL, options?: ReadOptions): LockMetadata | null {
    const resolved = resolveOptions(workspaceRoot, options);
    return readExisting(resolved, strictOf(options));
  }

  /**
   * Whether some holder has the lock right now. Probes with a shared
   * `flock(LOCK_SH | LOCK_NB)`, so concurrent probes never see each other.
   */
  static isLocked(workspaceRoot: string | URL, options?: LockOptions): boolean {
    return isLocked(resolveOptions(workspaceRoot, options));
  }

  /**
   * Whether the lock is held, and by whom: `holder` is the metadata while
   * the lock is held and its record is the holder's, `null` otherwise (see
   * `AlreadyLockedError.holder`).
   */
  static status(workspaceRoot: string | URL, options?: LockOptions): LockStatus {
    return statusOf(resolveOptions(workspaceRoot, options));
  }
  /**
   * Watches the lock: yields the current state at once, then each change
   * (acquired, its holder's record written, released by `release()`, exit
   * or kill, the lock file or its directory removed, moved or replaced),
   * coalescing bursts and never yielding the same state twice in a row; the
   * last state yielded is the current one. States are what `status()`
   * returns. It never takes the lock (it probes as `status()` does, through
   * one read-only descriptor per lock path and thread) and costs nothing
   * while nothing changes: on Linux inotify wakes it; elsewhere, and in
   * runtimes without libuv, a backoff poll (10 ms doubling to 250 ms) does.
   * Watches of one lock path in one thread share one descriptor and one
   * probe per change; all watches of a thread share one inotify descriptor.
   *
   * Nothing is opened until the first `next()`. `break`, `return()` or
   * aborting `options.signal` ends it and frees what it held; like
   * `fs.promises.watch`, an abort rejects the pending `next()` (or the next
   * one) with an `AbortError` whose `cause` is `signal.reason`, and later
   * calls report done. A live watch keeps the process alive, like `fs.watch`,
   * unless `options.persistent` is `false`. The path is followed as it
   * resolves now: a symbolic link on it re-pointed is seen. A reader's open
   * and close of the lock file costs about one probe.
   *
   * @throws (from `next()`) LockError when the lock file cannot be probed
   *   (`EACCES`, `ELOOP`, `ENETFS`...), which ends the watch.
   */
  static watch(workspaceRoot: string | URL, options?: WatchOptions): AsyncIterableIterator<LockStatus> {
    const { lockPath, policy } = resolveOptions(workspaceRoot, options);
    const signal = signalOf(options);
    const persistent = persistentOf(options);
    // Load the addon now, so that a platform without one (ENOBUILD,
    // ENOTSUP) fails this call, as every other call fails, rather than the
    // first `next()`, which opens nothing else.
    native();
    return new LockWatch(lockPath, policy, signal, persistent);
  }

  /**
   * The workspace root, as ralph (ralph-cli's `resolve_workspace_root`)
   * finds it: `RALPH_WORKSPACE_ROOT` when set and not blank (resolved
   * against the current directory, whether or not it exists); else the
   * nearest directory from `start` up, `start` included, that holds a
   * `.ralph` directory or a `.git` entry of any kind (a worktree, whose
   * `.git` is a file, is its own workspace); else `start`. The result is
   * absolute, resolved lexically: symbolic links on the way are kept as
   * written, not resolved. Nothing is created or locked.
   *
   * @param start where to begin, default `process.cwd()`; a relative path
   *   is resolved against the current directory first.
   * @throws TypeError when `start` is not a non-empty string or a file: URL.
   */
  static findWorkspace(start?: string | URL): string {
    return findWorkspace(start === undefined ? process.cwd() : start);
  }
}

/** `acquire()` with a timeout of 0: one try, as `tryAcquire()` makes it, failing as a timeout does. */
function acquireOnce(resolved: Resolved, prompt: string): LockGuard {
  try {
    return acquireNow(resolved, prompt);
  } catch (error) {
    if (!(error instanceof AlreadyLockedError)) throw error;
    throw timedOut(resolved.lockPath, 0, error.holder);
  }
}
