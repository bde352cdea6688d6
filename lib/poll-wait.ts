import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { clearImmediate, clearTimeout, setImmediate, setTimeout } from 'node:timers';
import type { NativeFailure } from './errors.js';
import { type Binding, type Handle, WaitOutcome } from './native.js';
import type { Claim, PendingWait, WaitCallback } from './wait.js';

// The backoff of the poll: the same bounds as the addon's safety net, so a
// holder that unlocks without telling anyone is seen within 100 ms.
const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 100;

/**
 * Waits for the lock on `handle` from JavaScript, for runtimes whose event
 * loop the addon cannot watch (Bun, Deno: see `RunsOnNode` in
 * native/binding.cc): `flock(LOCK_SH or LOCK_EX | LOCK_NB)` on a timer backing off from
 * 1 ms to 100 ms, retried at once whenever `fs.watch` reports a change to
 * the lock file's directory entry. Deno reports the close of a file opened
 * for writing there, so a loop-lock or Rust holder's release wakes it at once;
 * Bun reports creation, removal and renames only. Every try also checks that
 * the path still names the waited-on file, so a waiter whose file is removed,
 * replaced or moved away (a parent directory renamed) reopens within one
 * backoff step. Nothing blocks, so cancelling is clearing a timer and
 * closing a watcher.
 */
export class PollWait implements PendingWait {
  readonly #binding: Binding;
  readonly #handle: Handle;
  readonly #shared: boolean;
  readonly #claim: Claim | null;
  readonly #callback: WaitCallback;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #watcher: FSWatcher | undefined;
  #delay = 0;
  #done = false;

  constructor(
    binding: Binding,
    handle: Handle,
    lockPath: string,
    shared: boolean,
    claim: Claim | null,
    callback: WaitCallback,
  ) {
    this.#binding = binding;
    this.#handle = handle;
    this.#shared = shared;
    this.#claim = claim;
    this.#callback = callback;
    this.#watcher = watchEntry(lockPath, () => this.#attempt(true));
    // The first try runs on a later turn, after the watch is in place, so a
    // release between the caller's failed try and now is not lost; an
    // immediate, not a timer, so that it comes before anything the caller
    // schedules with setImmediate (an abort) once it has released, as the
    // addon's first try does under Node.
    this.#immediate = setImmediate(() => this.#attempt(false));
  }

  cancel(): void {
    if (this.#done) return;
    this.#done = true;
    clearImmediate(this.#immediate);
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #arm(delay: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#attempt(false), delay);
  }

  #attempt(woken: boolean): void {
    if (this.#done) return;
    const claim = this.#claim;
    const started = Date.now();
    let outcome: WaitOutcome;
    try {
      // One crossing per try: lock, claim, and when refused the path check.
      const found = this.#binding.attemptOn(this.#handle, claim?.pid ?? 0, claim?.promptJson ?? null, started, this.#shared);
      if (found > 0) {
        outcome = WaitOutcome.Locked;
      } else if (found === 0) {
        outcome = WaitOutcome.Stale;
      } else {
        // After an event, try again soon: a holder's close is reported a
        // moment before the kernel drops its flock.
        this.#delay = woken ? FIRST_RETRY_MS : Math.min(Math.max(this.#delay * 2, FIRST_RETRY_MS), MAX_RETRY_MS);
        this.#arm(this.#delay);
        return;
      }
    } catch (error) {
      this.cancel();
      this.#callback(error as NativeFailure);
      return;
    }
    this.cancel();
    if (outcome === WaitOutcome.Locked && claim !== null) this.#callback(null, outcome, started);
    else this.#callback(null, outcome);
  }
}

/**
 * Watches the directory holding `lockPath` for changes to its entry; none
 * when the runtime cannot watch it (inotify instances exhausted): the poll
 * alone still finds the lock free. The watch never keeps the process alive;
 * the wait's timer does.
 */
function watchEntry(lockPath: string, onChange: () => void): FSWatcher | undefined {
  const name = basename(lockPath);
  try {
    const watcher = watch(dirname(lockPath), { persistent: false }, (_event, file) => {
      if (file === null || file === name) onChange();
    });
    watcher.on('error', () => watcher.close());
    return watcher;
  } catch {
    return undefined;
  }
}
