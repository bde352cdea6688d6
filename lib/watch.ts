import { statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isErrno, isNativeFailure, toLockError } from './errors.js';
import { checkFilesystem } from './filesystem.js';
import type { LockMetadata } from './metadata.js';
import { type Binding, type Handle, Identity, native, WatchEvent, WatchRole } from './native.js';
import type { NetworkFilesystemPolicy } from './options.js';
import type { LockStatus } from './status.js';

/**
 * The state through an open handle: `statusThrough` in status.ts, the
 * rule of who holds it that `status()` follows. Leaves a shared lock on the
 * handle when free.
 */
export type ProbeReader = (binding: Binding, handle: Handle, lockPath: string) => LockStatus;

// After an event that may come a moment before the change it announces,
// probe again at 1, 2, 4 ... 64 ms, stopping at the first change: the kernel
// reports a holder's close (exit, SIGKILL, flock(1)) before it drops the
// lock, and an open (flock(1), Python) before the flock() that follows it.
const BURST_FIRST_MS = 1;
const BURST_PROBES = 7;

// The backoff poll where there is no inotify (macOS, Bun, Deno, inotify
// limits reached): from 10 ms after a change, doubling up to 250 ms.
const POLL_FIRST_MS = 10;
const POLL_MAX_MS = 250;

// How often the directories may change between being listed and watched
// before the feed settles for the poll.
const MAX_REWATCHES = 16;

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

function sameHolder(a: LockMetadata | null, b: LockMetadata | null): boolean {
  if (a === null || b === null) return a === b;
  return a.pid === b.pid && a.prompt === b.prompt && a.started.getTime() === b.started.getTime();
}

function sameStatus(a: LockStatus, b: LockStatus): boolean {
  return a.locked === b.locked && sameHolder(a.holder, b.holder);
}

/** A copy for one consumer, so that no consumer sees another's changes to it. */
function copyStatus(status: LockStatus): LockStatus {
  const holder = status.holder;
  return { locked: status.locked, holder: holder === null ? null : { ...holder, started: new Date(holder.started) } };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The directories to watch for `lockPath`: its own directory for the lock
 * file, or, while that is missing, the deepest one on the path that exists,
 * for the next name; and every directory above, for its own move or removal.
 */
function directoriesToWatch(lockPath: string): { directories: string[]; roles: WatchRole[]; names: string[] } {
  const directories: string[] = [];
  const roles: WatchRole[] = [];
  const names: string[] = [];
  let child = lockPath;
  let directory = dirname(lockPath);
  while (!isDirectory(directory) && dirname(directory) !== directory) {
    child = directory;
    directory = dirname(directory);
  }
  directories.push(directory);
  roles.push(child === lockPath ? WatchRole.LockDir : WatchRole.Parent);
  names.push(basename(child));
  for (let above = dirname(directory); above !== directory && dirname(above) !== above; ) {
    directories.push(above);
    roles.push(WatchRole.Ancestor);
    names.push('');
    directory = above;
    above = dirname(above);
  }
  return { directories, roles, names };
}

/** Whether two listings name the same directories (roles and names follow from them). */
function sameDirectories(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((directory, i) => directory === b[i]);
}

/**
 * The state of one lock path, for every watch of it in this thread: one
 * descriptor on the lock file, one set of inotify watches (or one poll), one
 * probe per change however many watch it. The descriptor stays open so
 * that probing opens and closes nothing: a watcher's own open and close
 * would be events for itself and for every other watcher, each probing
 * again, forever. Probes take the shared lock for microseconds, as
 * `status()` does, and never the lock itself.
 */
class LockFeed {
  private readonly subscribers = new Set<LockWatch>();
  private readonly binding: Binding;
  private handle: Handle | null = null;
  private watchId: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private burstLeft = 0;
  private burstDelay = 0;
  private pollDelay = POLL_FIRST_MS;
  private polling = false;
  private state: LockStatus = { locked: false, holder: null };

  constructor(
    readonly key: string,
    readonly lockPath: string,
    private readonly policy: NetworkFilesystemPolicy,
    private readonly read: ProbeReader,
  ) {
    this.binding = native();
  }

  /** Adds a watch, and tells it the current state. */
  subscribe(watch: LockWatch): void {
    const first = this.subscribers.size === 0;
    this.subscribers.add(watch);
    try {
      if (first) this.start();
      this.refresh();
    } catch (error) {
      return this.fail(error);
    }
    watch.offer(this.state);
  }

  unsubscribe(watch: LockWatch): void {
    if (!this.subscribers.delete(watch) || this.subscribers.size > 0) return;
    this.stop();
  }

  private start(): void {
    this.rewatch();
    this.reopen();
  }

  private stop(): void {
    feeds.delete(this.key);
    this.unwatch();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.closeHandle();
  }

  /** Ends every watch of this feed with `error`. */
  private fail(error: unknown): void {
    const failure = toLockError(error, this.lockPath);
    const subscribers = [...this.subscribers];
    this.subscribers.clear();
    this.stop();
    for (const watch of subscribers) watch.fail(failure);
  }

  /**
   * (Re)places the inotify watches along the path. Polls instead where there
   * are none: under Bun (no uv_poll) and Deno the addon has no watcher
   * (`RunsOnNode` in native/binding.cc), elsewhere than Linux no inotify,
   * and inotify's limits may be reached.
   */
  private rewatch(): void {
    const { watchPaths } = this.binding;
    if (this.polling) return;
    let listed = directoriesToWatch(this.lockPath);
    for (let attempt = 0; watchPaths !== undefined && attempt < MAX_REWATCHES; attempt++) {
      const { directories, roles, names } = listed;
      let id: number | null;
      try {
        id = watchPaths(directories, roles, names, (events) => this.onEvents(events));
      } catch (error) {
        if (!isNativeFailure(error)) throw error;
        // A directory went away since it was listed: list them again.
        if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) {
          listed = directoriesToWatch(this.lockPath);
          continue;
        }
        break;
      }
      if (id === null) break;
      this.unwatch();
      this.watchId = id;
      // A directory made on the path between listing and watching came
      // before its parent was watched, unseen: list again, now watched,
      // and watch that listing if it differs.
      listed = directoriesToWatch(this.lockPath);
      if (sameDirectories(listed.directories, directories)) return;
    }
    this.unwatch();
    this.startPolling();
  }

  private unwatch(): void {
    if (this.watchId !== null) this.binding.unwatchPaths?.(this.watchId);
    this.watchId = null;
  }

  private startPolling(): void {
    this.polling = true;
    this.schedulePoll(POLL_FIRST_MS);
  }

  private closeHandle(): void {
    if (this.handle !== null) this.binding.close(this.handle);
    this.handle = null;
  }

  /** Opens the file now at the path, if any, in place of the one open. */
  private reopen(): void {
    this.closeHandle();
    let handle: Handle;
    try {
      handle = this.binding.open(this.lockPath, false);
    } catch (error) {
      // Nothing there, or a path through a file: nothing is locked.
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return;
      throw error;
    }
    try {
      checkFilesystem(this.binding, handle, this.lockPath, this.policy);
    } catch (error) {
      this.binding.close(handle);
      throw error;
    }
    this.handle = handle;
  }

  /** Reopens when the file at the path is no longer the one open. */
  private follow(): void {
    if (this.handle === null || this.binding.identity(this.handle) !== Identity.Same) this.reopen();
  }

  private probe(): LockStatus {
    if (this.handle === null) return { locked: false, holder: null };
    const state = this.read(this.binding, this.handle, this.lockPath);
    if (!state.locked) this.binding.unlock(this.handle);
    return state;
  }

  /** Probes, and tells every watch when the state changed; true when it did. */
  private refresh(): boolean {
    const state = this.probe();
    if (sameStatus(state, this.state)) return false;
    this.state = state;
    for (const watch of this.subscribers) watch.offer(state);
    return true;
  }

  private onEvents(events: number): void {
    try {
      if (events === WatchEvent.Opened) {
        // Someone opened the file: a holder about to flock() it, or a reader.
        // Probing now would take the shared lock just as a holder tries the
        // exclusive one, making its tryAcquire() retry; a loop-lock holder's
        // record write comes as its own event, and anyone else's lock is
        // caught by the burst. While the lock is held, an open is a reader
        // or a contender: the holder's release comes with its own close.
        if (!this.state.locked && this.timer === null) this.startBurst();
        return;
      }
      if ((events & WatchEvent.PathChanged) !== 0) {
        this.rewatch();
        this.reopen();
      } else if ((events & WatchEvent.Named) !== 0) {
        this.follow();
        // Gone, and maybe its directory too: a removed directory reports its
        // own removal only once nothing has a file in it open any more (a
        // holder may keep the unlinked lock file open for hours).
        if (this.handle === null) this.rewatch();
      }
      const changed = this.refresh();
      // Still held after a close, or still free after an open: the change
      // may be a moment behind its event.
      const early =
        ((events & WatchEvent.Closed) !== 0 && this.state.locked) ||
        ((events & WatchEvent.Opened) !== 0 && !this.state.locked);
      if (early && !changed) this.startBurst();
      else if (changed) this.stopBurst();
    } catch (error) {
      this.fail(error);
    }
  }

  private startBurst(): void {
    if (this.polling) return;
    this.burstLeft = BURST_PROBES;
    this.burstDelay = BURST_FIRST_MS;
    this.schedule(this.burstDelay, () => this.onBurst());
  }

  private stopBurst(): void {
    if (this.polling || this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }

  private onBurst(): void {
    try {
      if (this.refresh() || --this.burstLeft === 0) return;
      this.burstDelay *= 2;
      this.schedule(this.burstDelay, () => this.onBurst());
    } catch (error) {
      this.fail(error);
    }
  }

  private schedulePoll(delay: number): void {
    this.pollDelay = delay;
    this.schedule(delay, () => this.onPoll());
  }

  private onPoll(): void {
    try {
      this.follow();
      const changed = this.refresh();
      this.schedulePoll(changed ? POLL_FIRST_MS : Math.min(this.pollDelay * 2, POLL_MAX_MS));
    } catch (error) {
      this.fail(error);
    }
  }

  private schedule(delay: number, run: () => void): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      run();
    }, delay);
  }
}

// The feeds of this thread (a worker has its own), by policy and lock path.
const feeds = new Map<string, LockFeed>();

function feedFor(lockPath: string, policy: NetworkFilesystemPolicy, read: ProbeReader): LockFeed {
  const key = `${policy}\0${lockPath}`;
  let feed = feeds.get(key);
  if (feed === undefined) {
    feed = new LockFeed(key, lockPath, policy, read);
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
export class LockWatch implements AsyncIterableIterator<LockStatus> {
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
    private readonly read: ProbeReader,
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
    this.feed = feedFor(this.lockPath, this.policy, this.read);
    this.feed.subscribe(this);
  }

  private close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.feed?.unsubscribe(this);
    this.feed = null;
  }
}
