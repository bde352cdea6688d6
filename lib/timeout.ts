import { clearTimeout, setTimeout } from 'node:timers';
import { LockError } from './errors.js';
import type { LockMetadata } from './metadata.js';

// A Node timer counts milliseconds in a signed 32-bit integer and turns a
// longer delay into 1 ms; longer timeouts are waited out in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The `timeout` option of a wait (`LoopLock.acquire()`, `FileLock`'s
 * `shared()` and `exclusive()`), in milliseconds: `undefined` when there is
 * no limit (absent, or `Infinity`). 0 means one try: the wait gives up at
 * once if the lock is held. Any finite length works (see `Deadline`).
 *
 * @throws TypeError when it is not a number; RangeError when it is negative
 *   or NaN.
 */
export function timeoutOf(options: { timeout?: number | undefined } | undefined): number | undefined {
  const timeout = options?.timeout;
  if (timeout === undefined || timeout === Number.POSITIVE_INFINITY) return undefined;
  if (typeof timeout !== 'number') {
    throw new TypeError(`The "options.timeout" argument must be a number of milliseconds, received type ${typeof timeout}`);
  }
  if (!(timeout >= 0 && Number.isFinite(timeout))) {
    throw new RangeError(
      `The "options.timeout" argument must be a number of milliseconds from 0 up, or Infinity, received ${timeout}`,
    );
  }
  return timeout;
}

/**
 * Calls `onExpire` once `ms` milliseconds have passed, unless cancelled
 * first; any length of time. It keeps the process alive, as the wait it
 * bounds does.
 */
export class Deadline {
  readonly #onExpire: () => void;
  readonly #at: number;
  #timer: ReturnType<typeof setTimeout>;

  constructor(ms: number, onExpire: () => void) {
    this.#onExpire = onExpire;
    this.#at = performance.now() + ms;
    this.#timer = setTimeout(() => this.#tick(), Math.min(ms, MAX_TIMER_MS));
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }

  #tick(): void {
    const left = this.#at - performance.now();
    if (left > 0) this.#timer = setTimeout(() => this.#tick(), Math.min(Math.ceil(left), MAX_TIMER_MS));
    else this.#onExpire();
  }
}

/** The failure of a wait that timed out: code `'ETIMEDOUT'`, naming the path and, when known, the holder. */
export function timedOut(lockPath: string, ms: number, holder: LockMetadata | null): LockError {
  const by = holder === null ? '' : ` by pid ${holder.pid} since ${holder.started.toISOString()}`;
  return new LockError(`ETIMEDOUT: lock '${lockPath}' was still held${by} after waiting ${ms} ms`, {
    code: 'ETIMEDOUT',
    path: lockPath,
  });
}
