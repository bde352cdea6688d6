import type { NetworkFilesystemPolicy } from './options.js';
import type { LockStatus } from './status.js';
import { LockFeed, sameStatus, type Subscriber } from './watch-feed.js';

/** The error a pending `next()` rejects with when the signal aborts, as `fs.promises.watch` and `events.on` do. */
class AbortError extends Error {
  readonly code = 'ABORT_ERR';

  constructor(cause: unknown) {
    super('The operation was aborted', { cause });
  }

  override get name(): string {
    return 'AbortError';
  }
}

/** A copy for one consumer, so that no consumer sees another's changes to it. */
function copyStatus(status: LockStatus): LockStatus {
  const holder = status.holder;
  return { locked: status.locked, holder: holder === null ? null : { ...holder, started: new Date(holder.started) } };
}

// The feeds of this thread (a worker has its own), by policy, persistence
// and lock path: watches with persistent: false share a feed of their own,
// whose handles and timers leave the event loop free to end.
const feeds = new Map<string, LockFeed>();

function feedFor(lockPath: string, policy: NetworkFilesystemPolicy, persistent: boolean): LockFeed {
  const key = `${policy}\0${persistent}\0${lockPath}`;
  let feed = feeds.get(key);
  if (feed === undefined) {
    feed = new LockFeed(lockPath, policy, persistent, () => feeds.delete(key));
    feeds.set(key, feed);
  }
  return feed;
}

type Request = {
  resolve: (result: IteratorResult<LockStatus, undefined>) => void;
  reject: (reason: unknown) => void;
};

/** Where a watch is in its life. */
const enum Phase {
  /** Made, not yet iterated: holds nothing. */
  New,
  /** Subscribed to its feed. */
  Open,
  /** Ended by an error or abort that the next `next()` reports. */
  Failed,
  /** Ended: `next()` says done. */
  Done,
}

const DONE: IteratorResult<LockStatus, undefined> = { value: undefined, done: true };

/**
 * One `watch()`: an async iterator over the states of its feed, yielding
 * the current state first, then each state that differs from the last one
 * it yielded; states that come faster than they are consumed are coalesced
 * into the newest.
 */
export class LockWatch implements AsyncIterableIterator<LockStatus>, Subscriber {
  private phase = Phase.New;
  private feed: LockFeed | null = null;
  private last: LockStatus | null = null;
  private latest: LockStatus | null = null;
  private failure: unknown = undefined;
  private readonly requests: Request[] = [];
  private readonly onAbort = (): void => this.fail(new AbortError(this.signal?.reason));

  constructor(
    private readonly lockPath: string,
    private readonly policy: NetworkFilesystemPolicy,
    private readonly signal: AbortSignal | undefined,
    private readonly persistent: boolean,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<LockStatus, undefined>> {
    if (this.phase === Phase.New) this.open();
    if (this.phase === Phase.Failed) {
      this.phase = Phase.Done;
      return Promise.reject(this.failure);
    }
    if (this.phase === Phase.Done) return Promise.resolve(DONE);
    const ready = this.take();
    if (ready !== null) return Promise.resolve({ value: ready, done: false });
    return new Promise((resolve, reject) => this.requests.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<LockStatus, undefined>> {
    this.close();
    this.phase = Phase.Done;
    for (const request of this.requests.splice(0)) request.resolve(DONE);
    return Promise.resolve(DONE);
  }

  /** The feed's state changed (or this is the first one). */
  offer(state: LockStatus): void {
    this.latest = state;
    const ready = this.requests.length > 0 ? this.take() : null;
    if (ready !== null) (this.requests.shift() as Request).resolve({ value: ready, done: false });
  }

  /** Ends the watch with `error`: the pending `next()`, or else the next one, rejects with it. */
  fail(error: unknown): void {
    if (this.phase === Phase.Done || this.phase === Phase.Failed) return;
    this.close();
    const [first, ...rest] = this.requests.splice(0);
    if (first === undefined) {
      this.phase = Phase.Failed;
      this.failure = error;
      return;
    }
    this.phase = Phase.Done;
    first.reject(error);
    for (const request of rest) request.resolve(DONE);
  }

  /** The newest state, unless it is the one yielded last. */
  private take(): LockStatus | null {
    const latest = this.latest;
    if (latest === null || (this.last !== null && sameStatus(latest, this.last))) return null;
    this.last = latest;
    return copyStatus(latest);
  }

  private open(): void {
    if (this.signal?.aborted) {
      this.phase = Phase.Failed;
      this.failure = new AbortError(this.signal.reason);
      return;
    }
    this.phase = Phase.Open;
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.feed = feedFor(this.lockPath, this.policy, this.persistent);
    this.feed.subscribe(this);
  }

  private close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.feed?.unsubscribe(this);
    this.feed = null;
  }
}
