import { basename, dirname } from 'node:path';
import type { NativeFailure } from './errors.js';
import type { Binding, Handle, WaitOutcome } from './native.js';
import { PollWait } from './poll-wait.js';

/**
 * How a wait reports its end, as Node calls back: `(failure)`, or
 * `(null, outcome)` with `started` (the record's time, ms) when Locked.
 */
export type WaitCallback = (failure: NativeFailure | null, outcome?: WaitOutcome, started?: number) => void;

/** What a wait makes of the lock once it has it: the loop lock's record, written by `pid`. */
export interface Claim {
  readonly pid: number;
  readonly promptJson: string;
}

/** A wait in progress. After `cancel()` its callback is never called. */
export interface PendingWait {
  cancel(): void;
}

/**
 * Waits until `flock(LOCK_SH)` (when `shared`) or `flock(LOCK_EX)` on
 * `handle` succeeds, then claims the lock as `Binding.claim` does unless
 * `claim` is null, calling back once (see `Binding.wait`). On Node
 * the addon's event-loop waiter does it; where the addon has none (Bun,
 * Deno), a poll from JavaScript (`PollWait`).
 */
export function startWait(
  binding: Binding,
  handle: Handle,
  lockPath: string,
  shared: boolean,
  claim: Claim | null,
  callback: WaitCallback,
): PendingWait {
  const { wait, cancelWait } = binding;
  if (wait === undefined || cancelWait === undefined) {
    return new PollWait(binding, handle, lockPath, shared, claim, callback);
  }
  const id = wait(handle, dirname(lockPath), basename(lockPath), shared, claim?.pid ?? 0, claim?.promptJson ?? null, callback);
  return { cancel: () => cancelWait(id) };
}
