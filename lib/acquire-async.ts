import { MAX_REOPENS, replacedTooOften } from './acquire.js';
import { LockError, type NativeFailure, toLockError } from './errors.js';
import { checkFilesystem } from './filesystem.js';
import { Holding, type LockGuard } from './guard.js';
import { currentHolder, openForLock } from './lock-file.js';
import type { LockMetadata } from './metadata.js';
import { type Binding, type Handle, native, WaitOutcome } from './native.js';
import type { Resolved } from './options.js';
import { Deadline, timedOut } from './timeout.js';
import { type PendingWait, startWait } from './wait.js';

/**
 * Where an `acquire()` is: `idle` before `start()`; `trying` while it opens,
 * locks and claims in one go (and reopens a file found stale); `waiting`
 * for a wait (see lib/wait.ts) to call back; `settled` once its promise is.
 */
type AcquireState = 'idle' | 'trying' | 'waiting' | 'settled';

/**
 * The state machine behind `acquire()`: try at once; if held, make the
 * guard ahead (a `Holding`) and wait on the event loop, which takes and
 * claims the lock; then hand out the guard, or try again when the wait
 * reports the file replaced. Every way out but the guard handed out closes
 * the handle. The signal's abort and the timeout end a wait the same way;
 * whichever comes first settles it.
 */
export class AsyncAcquire {
  readonly #binding: Binding = native();
  readonly #lockPath: string;
  readonly #policy: Resolved['policy'];
  readonly #prompt: string;
  readonly #promptJson: string;
  readonly #signal: AbortSignal | undefined;
  // The timeout in ms (0: one try), and its timer while the wait runs.
  readonly #timeout: number | undefined;
  #deadline: Deadline | null = null;
  readonly #resolve: (guard: LockGuard) => void;
  readonly #reject: (reason: unknown) => void;
  readonly #onAbort = (): void => this.abort();
  readonly #onWait = (failure: NativeFailure | null, outcome?: WaitOutcome, started?: number): void =>
    this.onWait(failure, outcome, started);
  #state: AcquireState = 'idle';
  // While waiting: the handle waited on, with its guard made ahead, and the wait.
  #holding: Holding | null = null;
  #wait: PendingWait | null = null;
  #reopens = 0;

  constructor(
    { lockPath, policy }: Resolved,
    prompt: string,
    promptJson: string,
    signal: AbortSignal | undefined,
    timeout: number | undefined,
    resolve: (guard: LockGuard) => void,
    reject: (reason: unknown) => void,
  ) {
    this.#timeout = timeout;
    this.#lockPath = lockPath;
    this.#policy = policy;
    this.#prompt = prompt;
    this.#promptJson = promptJson;
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** idle to trying, then to waiting or settled. */
  start(): void {
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (this.#timeout !== undefined && this.#timeout > 0) {
      this.#deadline = new Deadline(this.#timeout, () => this.#expire());
    }
    this.#try();
  }

  /**
   * A wait ended: Locked means locked and claimed (see native/waiter.h);
   * Stale, that the file was removed or replaced while waiting or just
   * before the wait took the lock. Each of those takes a filesystem event,
   * so they are not counted against MAX_REOPENS: a wait goes on waiting
   * while a peer keeps replacing the file. Only the reopens of one try,
   * which could spin, are bounded.
   */
  onWait(failure: NativeFailure | null, outcome?: WaitOutcome, started?: number): void {
    if (this.#state !== 'waiting') return;
    const holding = this.#holding as Holding;
    this.#holding = null;
    this.#wait = null;
    if (failure !== null) {
      holding.abandon();
      return this.#settle(failure);
    }
    if (outcome === WaitOutcome.Locked) return this.#settle(null, holding.hold(started as number));
    holding.abandon();
    this.#try();
  }

  /** The signal aborted: stops the wait (releasing a lock it took in a race with the abort) and rejects. */
  abort(): void {
    if (this.#state === 'settled') return;
    this.#stopWaiting();
    this.#settle(this.#signal?.reason);
  }

  /** The timeout passed while waiting: names the holder if it can, stops the wait and rejects with ETIMEDOUT. */
  #expire(): void {
    if (this.#state !== 'waiting') return;
    const holder = this.#holderOf((this.#holding as Holding).handle);
    this.#stopWaiting();
    this.#settle(timedOut(this.#lockPath, this.#timeout as number, holder));
  }

  /** Who holds the lock `handle` waits for, when its record says so for sure. */
  #holderOf(handle: Handle | null): LockMetadata | null {
    if (handle === null) return null;
    try {
      return currentHolder(this.#binding, handle, this.#lockPath);
    } catch {
      return null;
    }
  }

  #stopWaiting(): void {
    this.#wait?.cancel();
    this.#wait = null;
    this.#holding?.abandon();
    this.#holding = null;
  }

  /** Opens, locks and claims; waits when the lock is held. Settles on a guard or a failure. */
  #try(): void {
    this.#state = 'trying';
    const binding = this.#binding;
    try {
      for (;;) {
        const handle = openForLock(binding, this.#lockPath);
        const started = Date.now();
        let found: number;
        try {
          checkFilesystem(binding, handle, this.#lockPath, this.#policy);
          found = binding.attemptOn(handle, process.pid, this.#promptJson, started);
          if (found < 0) {
            this.#holding = new Holding(handle, this.#lockPath, process.pid, this.#prompt);
            this.#state = 'waiting';
            const claim = { pid: process.pid, promptJson: this.#promptJson };
            this.#wait = startWait(binding, handle, this.#lockPath, false, claim, this.#onWait);
            return;
          }
        } catch (error) {
          if (this.#holding === null) binding.close(handle);
          throw error;
        }
        if (found > 0) return this.#settle(null, Holding.held(handle, this.#lockPath, process.pid, this.#prompt, started));
        binding.close(handle);
        if (++this.#reopens > MAX_REOPENS) return this.#settle(replacedTooOften(this.#lockPath));
      }
    } catch (error) {
      this.#holding?.abandon();
      this.#holding = null;
      this.#wait = null;
      this.#settle(error);
    }
  }

  /** Any state to settled: resolves with `guard`, or rejects with `failure` as a LockError (the abort's reason as it is). */
  #settle(failure: unknown, guard?: LockGuard): void {
    this.#state = 'settled';
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#deadline?.cancel();
    this.#deadline = null;
    if (guard !== undefined) return this.#resolve(guard);
    const own = failure instanceof LockError || failure === this.#signal?.reason;
    this.#reject(own ? failure : toLockError(failure, this.#lockPath));
  }
}
