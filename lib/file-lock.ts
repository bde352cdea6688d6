import { basename, dirname, isAbsolute, resolve, sep } from 'node:path';
import { LockError, toLockError } from './errors.js';
import { type FileLockGuard, type FileLockMode, guardFor, refuseSelfDeadlock } from './file-lock-guard.js';
import { type FileLockWaitOptions, FileLockWait, waitLimitsOf } from './file-lock-wait.js';
import { openForLock } from './lock-file.js';
import { native, WaitOutcome } from './native.js';
import { refuseNul, toPathString } from './options.js';
import { sidecarOf } from './sidecar.js';

/**
 * Shared and exclusive locks on a file, as ralph-core's `file_lock.rs` takes
 * them: `flock(LOCK_SH)` or `flock(LOCK_EX)` on a sidecar lock file beside
 * it (`tasks.jsonl` is locked through `tasks.jsonl.lock`), never on the file
 * itself, so that replacing or truncating the file does not touch the lock.
 * Nothing is written into the sidecar. Readers take it shared, writers
 * exclusive, and a Node process and a Rust loop exclude each other.
 *
 * Each guard is its own open file description: two guards in one process,
 * or one thread, conflict as two processes do (an exclusive one excludes
 * every other; shared ones coexist). A guard never changes mode: `flock()`
 * converts a lock by dropping it first, so there is no upgrade or downgrade;
 * release, then take the other mode.
 */
export class FileLock {
  /** Absolute path of the sidecar lock file, named as `file_lock.rs` names it (see `sidecarOf`). */
  readonly lockPath: string;

  /**
   * Names the lock of `path` (a string or `file:` URL); nothing is opened
   * until a lock is taken, which creates the sidecar and its directories.
   *
   * @throws TypeError for a path of another type, or an empty one.
   * @throws LockError `'EINVAL'` for a path with a NUL byte.
   */
  constructor(path: string | URL) {
    const sidecar = sidecarOf(toPathString(path, 'path'));
    // Made absolute without normalizing: `a/../b` stays for the kernel to
    // resolve, as it does for the Rust side.
    this.lockPath = isAbsolute(sidecar) ? sidecar : `${resolve()}${sep}${sidecar}`;
    refuseNul(this.lockPath);
  }

  /** Takes a shared lock if no exclusive holder has it, without waiting; `null` when one does. */
  tryShared(): FileLockGuard | null {
    return this.#tryLock('shared');
  }

  /** Takes the exclusive lock if nobody holds a lock, without waiting; `null` when someone does. */
  tryExclusive(): FileLockGuard | null {
    return this.#tryLock('exclusive');
  }

  /**
   * Waits for a shared lock without blocking the event loop or occupying a
   * libuv threadpool thread, as `LoopLock.acquire()` waits.
   *
   * @throws (rejects with) `signal.reason` when `options.signal` aborts, and
   *   a `LockError` `'ETIMEDOUT'` once `options.timeout` ms have passed.
   */
  shared(options?: FileLockWaitOptions): Promise<FileLockGuard> {
    return this.#wait('shared', options);
  }

  /** Waits for the exclusive lock, as `shared()` waits for a shared one. */
  exclusive(options?: FileLockWaitOptions): Promise<FileLockGuard> {
    return this.#wait('exclusive', options);
  }

  /**
   * Takes a shared lock, blocking the calling thread until no exclusive
   * holder has it, as `file_lock.rs`'s `shared()` does. A worker blocked
   * here still ends on `worker.terminate()`.
   *
   * @throws LockError `'EDEADLK'` when this thread holds the exclusive lock
   *   through an unreleased guard: the wait could only last forever.
   */
  sharedBlocking(): FileLockGuard {
    return this.#lockBlocking('shared');
  }

  /** Takes the exclusive lock, blocking as `sharedBlocking()` does; `'EDEADLK'` when this thread holds any lock on it. */
  exclusiveBlocking(): FileLockGuard {
    return this.#lockBlocking('exclusive');
  }

  #tryLock(mode: FileLockMode): FileLockGuard | null {
    const binding = native();
    const handle = openForLock(binding, this.lockPath);
    try {
      if (binding.tryLock(handle, mode === 'shared')) return guardFor(handle, this.lockPath, mode);
    } catch (error) {
      binding.close(handle);
      throw toLockError(error, this.lockPath);
    }
    binding.close(handle);
    return null;
  }

  #wait(mode: FileLockMode, options: FileLockWaitOptions | undefined): Promise<FileLockGuard> {
    return new Promise((resolve, reject) => {
      const limits = waitLimitsOf(options);
      if (limits.signal?.aborted) throw limits.signal.reason;
      new FileLockWait(this.lockPath, mode, limits, resolve, reject);
    });
  }

  /** Opens and waits in this thread, reopening while the wait finds the file removed or replaced. */
  #lockBlocking(mode: FileLockMode): FileLockGuard {
    const binding = native();
    const directory = dirname(this.lockPath);
    const name = basename(this.lockPath);
    for (;;) {
      const handle = openForLock(binding, this.lockPath);
      let outcome: WaitOutcome | undefined;
      try {
        refuseSelfDeadlock(binding.fileKey(handle), this.lockPath, mode);
        outcome = binding.lockBlocking(handle, directory, name, mode === 'shared');
      } catch (error) {
        binding.close(handle);
        throw toLockError(error, this.lockPath);
      }
      if (outcome === WaitOutcome.Locked) return guardFor(handle, this.lockPath, mode);
      binding.close(handle);
      if (outcome === undefined) {
        // This thread is being torn down; nothing will see this.
        throw new LockError(`EINTR: the wait for lock '${this.lockPath}' ended with its thread`, {
          code: 'EINTR',
          path: this.lockPath,
        });
      }
    }
  }
}
