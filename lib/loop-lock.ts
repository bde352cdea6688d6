import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import {
  AlreadyLockedError,
  isErrno,
  LockError,
  LockParseError,
  type NativeFailure,
  toLockError,
} from './errors.js';
import { checkFilesystem, filesystemCleared } from './filesystem.js';
import { heldByThisThread, Holding, type LockGuard } from './guard.js';
import { encodePrompt, type LockMetadata, MAX_METADATA_BYTES, parseRecord } from './metadata.js';
import { type Binding, type Handle, native, WaitOutcome } from './native.js';
import {
  type AcquireOptions,
  LOCK_FILE,
  type LockOptions,
  type NetworkFilesystemPolicy,
  type ReadOptions,
  type Resolved,
  type WatchOptions,
  resolveOptions,
  signalOf,
  strictOf,
} from './options.js';
import { type PendingWait, startWait } from './wait.js';
import { LockWatch } from './watch.js';

/** What `LoopLock.status()` reports. */
export interface LockStatus {
  /** Whether some open file description holds the lock exclusively. */
  locked: boolean;
  /** The holder's metadata while the lock is held and the record in the file is the holder's, else `null`. */
  holder: LockMetadata | null;
}

// How often the lock file may turn out to be replaced between open() and
// flock() before acquiring gives up: a file that is swapped this often is
// being fought over, and looping forever would hide it.
const MAX_REOPENS = 64;

// How long tryAcquire retries while only probes stand in its way. A probe
// holds its shared lock for a microsecond or two, but a prober preempted in
// that window holds it for the rest of its time slice, a few milliseconds.
const PROBE_PATIENCE_MS = 10;

/**
 * Creates `dir` and any missing parents. Not `mkdirSync`'s recursive mode:
 * when mkdir(2) fails with EROFS (or any errno it does not expect), Node 20
 * reports the ENOENT of its follow-up stat() instead of the real error.
 */
function makeDirectories(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
    makeDirectories(dirname(dir));
    try {
      mkdirSync(dir);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== 'EEXIST') throw again;
    }
  }
}

/** Opens (creating it and its directories) the lock file for locking. */
function openForLock(binding: Binding, lockPath: string): Handle {
  try {
    return binding.open(lockPath, true);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw toLockError(error, lockPath);
  }
  try {
    makeDirectories(dirname(lockPath));
    return binding.open(lockPath, true);
  } catch (error) {
    throw toLockError(error, lockPath);
  }
}

/** Opens the lock file for reading; `null` when it does not exist. */
function openExisting(binding: Binding, lockPath: string): Handle | null {
  try {
    return binding.open(lockPath, false);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw toLockError(error, lockPath);
  }
}

// Why a file is no record, by the errno `Binding.read` fails with for it
// (by name: see isErrno).
const NOT_A_RECORD: ReadonlyArray<readonly [string, string]> = [
  ['EFBIG', `the file is larger than ${MAX_METADATA_BYTES} bytes`],
  ['EILSEQ', 'the file is not UTF-8 text'],
];

/**
 * Reads the record in the file open as `handle`: the one decoder of what
 * `Binding.read` returns. `null` for an empty file; `LockParseError` for
 * anything but a complete record; any other failure as a `LockError`.
 */
function readRecord(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  let text: string;
  try {
    text = binding.read(handle, MAX_METADATA_BYTES);
  } catch (error) {
    const reason = NOT_A_RECORD.find(([code]) => isErrno(error, code));
    if (reason !== undefined) throw new LockParseError(lockPath, reason[1]);
    throw toLockError(error, lockPath);
  }
  return parseRecord(text, lockPath);
}

/**
 * The metadata of whoever holds the lock that `handle` failed to take, or
 * `null` when the record is not theirs for sure: not (yet) a complete
 * record, or one whose pid does not hold the lock. A new holder has locked
 * but not yet written over the last holder's record; a foreign holder
 * (`flock(1)`) writes none; a holder that died left its record. Callers
 * signal the pid they are given, so it must be the holder's.
 */
function currentHolder(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  const holder = readRecordOrNull(binding, handle, lockPath);
  return holder !== null && binding.heldBy(handle, holder.pid) ? holder : null;
}

/** The record, or `null` for anything that is not a complete one, as the reference's `read_existing` has it. */
function readRecordOrNull(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  try {
    return readRecord(binding, handle, lockPath);
  } catch (error) {
    if (error instanceof LockParseError) return null;
    throw error;
  }
}

/** What a lock step found. */
const enum Found {
  /** The handle holds the lock. */
  Locked,
  /** Another holder has it. */
  Held,
  /** The path no longer names the handle's file (a wait saw it moved, removed or replaced): reopen. */
  Moved,
}

/** Locks an open handle. */
type LockStep = (binding: Binding, handle: Handle, lockPath: string) => Found;

/**
 * Finishes an acquisition once `handle` is locked: checks that the locked
 * inode is still the one at the path (the file may have been deleted or
 * replaced between open() and flock(), and a lock on an unlinked inode
 * excludes nobody), then writes the metadata in place, all in one call
 * (`binding.claim`). Returns `null`, with the handle closed, when the file
 * is stale and the caller must reopen.
 */
function claim(binding: Binding, handle: Handle, lockPath: string, prompt: string, promptJson: string) {
  const started = binding.claim(handle, process.pid, promptJson);
  if (started === null) {
    binding.close(handle);
    return null;
  }
  return Holding.held(handle, lockPath, process.pid, prompt, started);
}

function replacedTooOften(lockPath: string): LockError {
  return new LockError(`EAGAIN: lock file '${lockPath}' was replaced ${MAX_REOPENS} times while being locked`, {
    code: 'EAGAIN',
    path: lockPath,
  });
}

/** Opens, locks with `lock` and claims, reopening while the file turns out stale. */
function acquireWith({ lockPath, policy }: Resolved, prompt: unknown, lock: LockStep): LockGuard {
  const promptJson = encodePrompt(prompt);
  const binding = native();
  // Only reopens right after locking count: a wait that saw its file move
  // took a filesystem event to get there, and goes on waiting however often
  // a peer replaces the file (as acquire() does).
  for (let reopens = 0; reopens <= MAX_REOPENS; ) {
    const handle = openForLock(binding, lockPath);
    let holder: LockMetadata | null;
    try {
      checkFilesystem(binding, handle, lockPath, policy);
      const found = lock(binding, handle, lockPath);
      if (found === Found.Locked) {
        const guard = claim(binding, handle, lockPath, prompt as string, promptJson);
        if (guard !== null) return guard;
        reopens++;
        continue;
      }
      if (found === Found.Moved) {
        binding.close(handle);
        continue;
      }
      holder = currentHolder(binding, handle, lockPath);
    } catch (error) {
      binding.close(handle);
      throw toLockError(error, lockPath);
    }
    // Thrown here rather than by the step: one throw, not a throw caught
    // and rethrown, on the path a busy contender takes most.
    binding.close(handle);
    throw new AlreadyLockedError(lockPath, holder);
  }
  throw replacedTooOften(lockPath);
}

const lockNow: LockStep = (binding, handle) => {
  if (binding.tryLock(handle, false)) return Found.Locked;
  // Refused by a holder, or only by probes (isLocked, status), which hold a
  // shared lock for a microsecond or two. A shared lock we can take proves
  // there is no holder: then try again, converting it to exclusive (a
  // failed conversion leaves no lock), until no shared lock is to be had.
  const deadline = performance.now() + PROBE_PATIENCE_MS;
  while (binding.tryLock(handle, true)) {
    if (binding.tryLock(handle, false)) return Found.Locked;
    if (performance.now() > deadline) break;
  }
  return Found.Held;
};

const lockWaiting: LockStep = (binding, handle, lockPath) => {
  if (heldByThisThread(binding.fileKey(handle))) {
    throw new LockError(
      `EDEADLK: this thread already holds lock '${lockPath}'; acquireBlocking() would wait for itself forever`,
      { code: 'EDEADLK', path: lockPath },
    );
  }
  const outcome = binding.lockBlocking(handle, dirname(lockPath), basename(lockPath));
  if (outcome === WaitOutcome.Locked) return Found.Locked;
  if (outcome === WaitOutcome.Stale) return Found.Moved;
  // This thread is being torn down; nothing will see this.
  throw new LockError(`EINTR: the wait for lock '${lockPath}' ended with its thread`, {
    code: 'EINTR',
    path: lockPath,
  });
};

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
    return acquireWith(resolveOptions(workspaceRoot, options), prompt, lockNow);
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
    return acquireWith(resolveOptions(workspaceRoot, options), prompt, lockWaiting);
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
   */
  static acquire(workspaceRoot: string | URL, prompt: string, options?: AcquireOptions): Promise<LockGuard> {
    return new Promise((resolve, reject) => {
      const { lockPath, policy } = resolveOptions(workspaceRoot, options);
      const promptJson = encodePrompt(prompt);
      const signal = signalOf(options);
      if (signal?.aborted) throw signal.reason;
      acquireAsync(lockPath, prompt, promptJson, signal, policy, resolve, reject);
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
    const { lockPath } = resolveOptions(workspaceRoot, options);
    const strict = strictOf(options);
    const binding = native();
    const handle = openExisting(binding, lockPath);
    if (handle === null) return null;
    try {
      return strict ? readRecord(binding, handle, lockPath) : readRecordOrNull(binding, handle, lockPath);
    } finally {
      binding.close(handle);
    }
  }

  /**
   * Whether some holder has the lock right now. Probes with a shared
   * `flock(LOCK_SH | LOCK_NB)`, so concurrent probes never see each other.
   */
  static isLocked(workspaceRoot: string | URL, options?: LockOptions): boolean {
    const { lockPath, policy } = resolveOptions(workspaceRoot, options);
    return probe(lockPath, policy);
  }

  /**
   * Whether the lock is held, and by whom: `holder` is the metadata while
   * the lock is held and its record is the holder's, `null` otherwise (see
   * `AlreadyLockedError.holder`).
   */
  static status(workspaceRoot: string | URL, options?: LockOptions): LockStatus {
    const { lockPath, policy } = resolveOptions(workspaceRoot, options);
    return statusOf(lockPath, policy);
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
   * calls report done. A live watch keeps the process alive, like `fs.watch`.
   *
   * @throws (from `next()`) LockError when the lock file cannot be probed
   *   (`EACCES`, `ELOOP`, `ENETFS`...), which ends the watch.
   */
  static watch(workspaceRoot: string | URL, options?: WatchOptions): AsyncIterableIterator<LockStatus> {
    const { lockPath, policy } = resolveOptions(workspaceRoot, options);
    const signal = signalOf(options);
    native();
    return new LockWatch(lockPath, policy, signal, statusThrough);
  }
}


/**
 * The state machine behind `acquire()`: try at once; if held, make the guard
 * ahead and wait on the event loop (see native/waiter.h), which takes and
 * claims the lock; then hand out the guard, or reopen when the wait reports
 * the file replaced. Every exit but the one that hands out the guard closes
 * the handle.
 */
function acquireAsync(
  lockPath: string,
  prompt: string,
  promptJson: string,
  signal: AbortSignal | undefined,
  policy: NetworkFilesystemPolicy,
  resolve: (guard: LockGuard) => void,
  reject: (reason: unknown) => void,
): void {
  const binding = native();
  let handle: Handle | null = null;
  // The handle being waited on, with its guard made ahead (see Holding).
  let pending: Holding | null = null;
  let wait: PendingWait | null = null;
  let reopens = 0;

  // Closes the handle and forgets its guard; succeed() clears both first.
  const closeHandle = (): void => {
    if (pending !== null) pending.abandon();
    else if (handle !== null) binding.close(handle);
    pending = null;
    handle = null;
  };
  const settle = (): void => {
    signal?.removeEventListener('abort', onAbort);
    closeHandle();
  };
  const fail = (error: unknown): void => {
    settle();
    reject(error instanceof LockError || error === signal?.reason ? error : toLockError(error, lockPath));
  };
  function onAbort(): void {
    wait?.cancel();
    fail(signal?.reason);
  }
  const succeed = (guard: LockGuard): void => {
    handle = null;
    pending = null;
    settle();
    resolve(guard);
  };
  // Locked means locked and claimed (see native/waiter.h); Stale, that the
  // file was removed or replaced while waiting or just before the wait took
  // the lock. Each of those takes a filesystem event, so they are not counted
  // against MAX_REOPENS: a wait goes on waiting while a peer keeps replacing
  // the file. Only the synchronous reopen loop in start(), which could spin,
  // is bounded.
  const onWait = (failure: NativeFailure | null, outcome?: WaitOutcome, started?: number): void => {
    try {
      if (failure !== null) return fail(failure);
      if (outcome === WaitOutcome.Locked) {
        return succeed((pending as Holding).hold(started as number));
      }
      closeHandle();
      start();
    } catch (error) {
      fail(error);
    }
  };
  function start(): void {
    handle = openForLock(binding, lockPath);
    checkFilesystem(binding, handle, lockPath, policy);
    if (!binding.tryLock(handle, false)) {
      pending = new Holding(handle, lockPath, process.pid, prompt);
      wait = startWait(binding, handle, lockPath, process.pid, promptJson, onWait);
      return;
    }
    const guard = claim(binding, handle, lockPath, prompt, promptJson);
    handle = null;
    if (guard !== null) return succeed(guard);
    if (++reopens > MAX_REOPENS) return fail(replacedTooOften(lockPath));
    start();
  }

  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    start();
  } catch (error) {
    fail(error);
  }
}

function probe(lockPath: string, policy: NetworkFilesystemPolicy): boolean {
  const binding = native();
  if (!filesystemCleared(lockPath, policy) && !checkExistingFilesystem(binding, lockPath, policy)) return false;
  try {
    return binding.probe(lockPath) === true;
  } catch (error) {
    throw toLockError(error, lockPath);
  }
}

/**
 * The lock's state through an open handle, by the one rule of who holds it
 * (`currentHolder`): shared by `status()` and `watch()`. When free, the
 * handle is left holding a shared lock, for the caller to close or unlock.
 */
export function statusThrough(binding: Binding, handle: Handle, lockPath: string): LockStatus {
  if (binding.tryLock(handle, true)) return { locked: false, holder: null };
  return { locked: true, holder: currentHolder(binding, handle, lockPath) };
}

/**
 * Probes as `isLocked` does, on a handle of its own, so that the record is
 * read, and its pid checked, on the inode found held.
 */
function statusOf(lockPath: string, policy: NetworkFilesystemPolicy): LockStatus {
  const binding = native();
  const handle = openExisting(binding, lockPath);
  if (handle === null) return { locked: false, holder: null };
  try {
    checkFilesystem(binding, handle, lockPath, policy);
    return statusThrough(binding, handle, lockPath);
  } catch (error) {
    throw toLockError(error, lockPath);
  } finally {
    binding.close(handle);
  }
}

/**
 * Applies the filesystem policy to the lock file through a handle of its
 * own, the first time a probe meets it; false when there is no lock file.
 */
function checkExistingFilesystem(binding: Binding, lockPath: string, policy: NetworkFilesystemPolicy): boolean {
  const handle = openExisting(binding, lockPath);
  if (handle === null) return false;
  try {
    checkFilesystem(binding, handle, lockPath, policy);
  } finally {
    binding.close(handle);
  }
  return true;
}
