import { LockError, type NativeFailure, toLockError } from './errors.js';
import { type FileLockGuard, type FileLockMode, guardFor } from './file-lock-guard.js';
import { openForLock } from './lock-file.js';
import { type Binding, type Handle, native, WaitOutcome } from './native.js';
import { Deadline, timedOut, timeoutOf } from './timeout.js';
import { type PendingWait, startWait } from './wait.js';

/** Options of `FileLock.shared()` and `FileLock.exclusive()`. */
export interface FileLockWaitOptions {
  /** Aborting it rejects the pending wait with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /**
   * Milliseconds to wait at most (0: one try; `Infinity`: no limit); then the
   * wait rejects with a `LockError` whose code is `'ETIMEDOUT'`.
   */
  timeout?: number | undefined;
}

/** The checked options of one wait. */
interface WaitLimits {
  readonly signal: AbortSignal | undefined;
  readonly timeout: number | undefined;
}

/** Checks the options of a wait: a wrong type is a `TypeError`, a negative or NaN timeout a `RangeError` (see `timeoutOf`). */
export function waitLimitsOf(options: FileLockWaitOptions | undefined): WaitLimits {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('The "options" argument must be an object');
  }
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError('The "options.signal" argument must be an AbortSignal');
  }
  return { signal, timeout: timeoutOf(options) };
}

/**
 * The wait behind `shared()` and `exclusive()`: try at once; if the lock is
 * taken, wait on the event loop as the loop lock's `acquire()` does (the
 * addon's inotify waiter on Node, the poll elsewhere: lib/wait.ts), without
 * claiming anything; reopen when the wait finds the file removed or
 * replaced. Every way out but the guard handed out closes the handle.
 */
export class FileLockWait {
  readonly #binding: Binding = native();
  readonly #lockPath: string;
  readonly #mode: FileLockMode;
  readonly #signal: AbortSignal | undefined;
  readonly #resolve: (guard: FileLockGuard) => void;
  readonly #reject: (reason: unknown) => void;
  readonly #onAbort = (): void => this.#settle(this.#signal?.reason);
  #deadline: Deadline | undefined;
  // While waiting: the handle waited on, and the wait.
  #handle: Handle | null = null;
  #wait: PendingWait | null = null;
  #settled = false;

  constructor(
    lockPath: string,
    mode: FileLockMode,
    { signal, timeout }: WaitLimits,
    resolve: (guard: FileLockGuard) => void,
    reject: (reason: unknown) => void,
  ) {
    this.#lockPath = lockPath;
    this.#mode = mode;
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (timeout !== undefined) {
      this.#deadline = new Deadline(timeout, () => this.#settle(timedOut(this.#lockPath, timeout, null)));
    }
    this.#try();
  }

  /** Opens and locks; waits when the lock is taken. */
  #try(): void {
    const binding = this.#binding;
    let handle: Handle | undefined;
    try {
      handle = openForLock(binding, this.#lockPath);
      const shared = this.#mode === 'shared';
      if (binding.tryLock(handle, shared)) return this.#settle(null, guardFor(handle, this.#lockPath, this.#mode));
      this.#handle = handle;
      this.#wait = startWait(binding, handle, this.#lockPath, shared, null, this.#onWait);
    } catch (error) {
      if (handle !== undefined && this.#handle === null) binding.close(handle);
      this.#settle(error);
    }
  }

  readonly #onWait = (failure: NativeFailure | null, outcome?: WaitOutcome): void => {
    const handle = this.#handle as Handle;
    this.#handle = null;
    this.#wait = null;
    if (failure === null && outcome === WaitOutcome.Locked) {
      return this.#settle(null, guardFor(handle, this.#lockPath, this.#mode));
    }
    this.#binding.close(handle);
    // Stale: the file was removed or replaced while waited on; wait on the one at the path now.
    if (failure === null) return this.#try();
    this.#settle(failure);
  };

  /** Resolves with `guard`, or stops waiting and rejects with `failure` (as a LockError, but the abort's reason as it is). */
  #settle(failure: unknown, guard?: FileLockGuard): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#deadline?.cancel();
    this.#wait?.cancel();
    this.#wait = null;
    if (this.#handle !== null) this.#binding.close(this.#handle);
    this.#handle = null;
    if (guard !== undefined) return this.#resolve(guard);
    const own = failure instanceof LockError || failure === this.#signal?.reason;
    this.#reject(own ? failure : toLockError(failure, this.#lockPath));
  }
}
