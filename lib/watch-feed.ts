import { lstatSync } from 'node:fs';
import { isErrno, isNativeFailure, toLockError } from './errors.js';
import { checkFilesystem } from './filesystem.js';
import type { LockMetadata } from './metadata.js';
import { type Binding, type Handle, Identity, native, WatchEvent } from './native.js';
import type { NetworkFilesystemPolicy } from './options.js';
import { type LockStatus, statusThrough } from './status.js';
import { directoriesToWatch, sameList } from './watch-path.js';

/** What a feed tells each of its watches. */
export interface Subscriber {
  offer(state: LockStatus): void;
  fail(error: unknown): void;
}

// After an open while the lock is free, probe again at 1, 2, 4 ... 64 ms,
// stopping at the first change: an open (flock(1), Python) comes before the
// flock() that follows it, and a lock taken makes no event of its own.
const BURST_FIRST_MS = 1;
const BURST_PROBES = 7;

// After a close that changed the state, or left the lock held by a holder
// that wrote no record, one flock() this much later. The kernel reports a
// close just before it drops the locks of what was closed (__fput:
// fsnotify_close, then locks_remove_file, with no preemption point between
// on kernels that preempt voluntarily or lazily), so a holder that closes
// without unlocking may in principle still hold at the first probe:
// flock(1) always releases that way, a holder that writes its record
// unlocks first (release(), Rust's drop) and closes that way only when it
// dies. Not after a reader's close beside a holder with a record: that
// timer's wake-up tripled a watcher's CPU per reader (see bench/watch.js),
// and the probe at the event saw every one of 10,000 dying holders' locks
// gone on the development machine, one core shared with three busy loops
// included. After a release, a waiter that had the file open already takes
// the lock a moment later, with no event of its own.
const SETTLE_MS = 4;

// The backoff poll where there is no inotify (macOS, Bun, Deno, inotify
// limits reached): from 10 ms after a change, doubling up to 250 ms.
const POLL_FIRST_MS = 10;
const POLL_MAX_MS = 250;

// How often the directories may change between being listed and watched
// before the feed settles for the poll.
const MAX_REWATCHES = 16;

const FREE: LockStatus = Object.freeze({ locked: false, holder: null });

// Events after which the record may differ from the one last read.
const RECORD_EVENTS = WatchEvent.Written | WatchEvent.Named | WatchEvent.PathChanged;

function sameHolder(a: LockMetadata | null, b: LockMetadata | null): boolean {
  if (a === null || b === null) return a === b;
  return a.pid === b.pid && a.prompt === b.prompt && a.started.getTime() === b.started.getTime();
}

export function sameStatus(a: LockStatus, b: LockStatus): boolean {
  return a.locked === b.locked && sameHolder(a.holder, b.holder);
}

/** Whether the lock path's last name is a symbolic link (which watch() refuses, as every call does). */
function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The state of one lock path, for every watch of it in this thread: one
 * descriptor on the lock file, one set of inotify watches (or one poll), one
 * probe per change however many watch it. The descriptor stays open so
 * that probing opens and closes nothing: a watcher's own open and close
 * would be events for itself and for every other watcher, each probing
 * again, forever. Probes take the shared lock for microseconds, as
 * `status()` does, and never the lock itself.
 *
 * An event that can have changed nothing costs one probe and no read: a
 * reader's open (while held) none, its close one flock() and the check that
 * the holder already named still holds (see `recheck`).
 */
export class LockFeed {
  private readonly subscribers = new Set<Subscriber>();
  private readonly binding: Binding;
  private handle: Handle | null = null;
  private watchId: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private burstLeft = 0;
  private burstDelay = 0;
  private pollDelay = POLL_FIRST_MS;
  private polling = false;
  private state: LockStatus = FREE;

  constructor(
    readonly lockPath: string,
    private readonly policy: NetworkFilesystemPolicy,
    private readonly persistent: boolean,
    private readonly onStop: () => void,
  ) {
    this.binding = native();
  }

  /** Adds a watch, and tells it the current state. */
  subscribe(watch: Subscriber): void {
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

  unsubscribe(watch: Subscriber): void {
    if (!this.subscribers.delete(watch) || this.subscribers.size > 0) return;
    this.stop();
  }

  private start(): void {
    this.rewatch();
    this.reopen();
  }

  private stop(): void {
    this.onStop();
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
   * (Re)places the inotify watches along the path as it resolves now. Polls
   * instead where there are none: under Bun (no uv_poll) and Deno the addon
   * has no watcher (`RunsOnNode` in native/binding.cc), elsewhere than Linux
   * no inotify, and inotify's limits may be reached.
   */
  private rewatch(): void {
    const { watchPaths } = this.binding;
    if (this.polling) return;
    let listed = watchPaths === undefined ? null : directoriesToWatch(this.lockPath);
    for (let attempt = 0; listed !== null && attempt < MAX_REWATCHES; attempt++) {
      const { directories, roles, names } = listed;
      let id: number | null | undefined;
      try {
        id = watchPaths?.(directories, roles, names, (events) => this.onEvents(events), this.persistent);
      } catch (error) {
        if (!isNativeFailure(error)) throw error;
        // A directory went away since it was listed: list them again.
        if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) {
          listed = directoriesToWatch(this.lockPath);
          continue;
        }
        break;
      }
      if (id === null || id === undefined) break;
      this.unwatch();
      this.watchId = id;
      // A name on the path made, removed or re-pointed between listing and
      // watching came before its directory was watched, unseen: list again,
      // now watched, and watch that listing if it differs.
      const again = directoriesToWatch(this.lockPath);
      if (sameList(again, listed)) return;
      listed = again;
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
      // Nothing there, a path through a file, or a loop of links on the
      // way (not at the lock file itself, which is refused): nothing is
      // locked, until the path changes.
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return;
      if (isErrno(error, 'ELOOP') && !isSymlink(this.lockPath)) return;
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
    if (this.handle === null) return FREE;
    // The rule of who holds it that status() follows; leaves a shared lock on the handle when free.
    const state = statusThrough(this.binding, this.handle, this.lockPath);
    if (!state.locked) this.binding.unlock(this.handle);
    return state;
  }

  /** Whether the lock is free now, by one flock() and no read. */
  private isFree(): boolean {
    if (this.handle === null) return true;
    if (!this.binding.tryLock(this.handle, true)) return false;
    this.binding.unlock(this.handle);
    return true;
  }

  /** Tells every watch the new state, unless it is the one they have; true when it changed. */
  private update(state: LockStatus): boolean {
    if (sameStatus(state, this.state)) return false;
    this.state = state;
    for (const watch of this.subscribers) watch.offer(state);
    return true;
  }

  /** Probes, and tells every watch when the state changed; true when it did. */
  private refresh(): boolean {
    return this.update(this.probe());
  }

  /**
   * The probe after events that wrote nothing while the lock was held (a
   * reader's open and close): the record is the one last read, so only
   * whether the lock is still held, and, when a holder is named, whether it
   * still holds (a close may have been its release, and a waiter that had
   * the file open already may hold now, its record not yet written).
   */
  private recheck(): boolean {
    if (this.isFree()) return this.update(FREE);
    const { holder } = this.state;
    if (holder === null || this.binding.heldBy(this.handle as Handle, holder.pid, holder.started.getTime())) return false;
    return this.refresh();
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
      const quiet = (events & RECORD_EVENTS) === 0 && this.state.locked && this.handle !== null;
      const changed = quiet ? this.recheck() : this.refresh();
      const closed = (events & WatchEvent.Closed) !== 0;
      // Settle after a close that changed the state, that left a holder
      // with no record (flock(1)), or that came from a descriptor open for
      // writing: a holder's exit closes its file before the kernel drops
      // its locks, so the probe above may still have found it held. A
      // reader's close (read-only) costs no timer.
      const writer = (events & WatchEvent.WriterClosed) !== 0;
      if (closed && (changed || writer || (this.state.locked && this.state.holder === null))) this.settle();
      else if (changed) this.stopBurst();
      else if ((events & WatchEvent.Opened) !== 0 && !this.state.locked) this.startBurst();
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

  /**
   * One flock() a moment after a close (see `SETTLE_MS`): the lock dropped
   * since, or, after a release, taken by a waiter that had the file open
   * already, which makes no event (flock(1) waiting; a loop-lock or Rust
   * waiter's record write does).
   */
  private settle(): void {
    if (this.polling) return;
    this.schedule(SETTLE_MS, () => {
      try {
        if (this.isFree()) this.update(FREE);
        else if (!this.state.locked) this.refresh();
      } catch (error) {
        this.fail(error);
      }
    });
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
    // With persistent: false nothing of the watch keeps the process alive.
    if (!this.persistent) this.timer.unref();
  }
}
