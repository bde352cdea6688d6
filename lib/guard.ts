import { LockError, toLockError } from './errors.js';
import type { LockMetadata } from './metadata.js';
import { type Handle, Identity, native } from './native.js';

/**
 * What a guard's check found: `'held'` while its file is the one at the lock
 * path; `'removed'` when nothing is at the path any more; `'replaced'` when
 * another file is (an editor's rename over it, or a newcomer's file after a
 * removal); `'linked'` when its file is at the path but has another hard
 * link too, so it is also some other path's file; `'released'` after
 * `release()`.
 */
export type GuardState = 'held' | 'removed' | 'replaced' | 'linked' | 'released';

const STATE_OF: Readonly<Record<Identity, GuardState>> = {
  [Identity.Same]: 'held',
  [Identity.Removed]: 'removed',
  [Identity.Replaced]: 'replaced',
  [Identity.Linked]: 'linked',
};

// Why each compromised state keeps the guard from vouching for its file.
const COMPROMISE: Readonly<Record<'removed' | 'replaced' | 'linked', string>> = {
  removed: 'the file was removed while held, so another process may lock it',
  replaced: 'the file was replaced while held, so another process may lock it',
  linked: "the file was hard-linked while held, so it is also another path's file, which others may write",
};

// Handles of this thread's unreleased guards, so acquireBlocking() can refuse
// to wait for a lock this very thread holds (it could only deadlock).
const liveHandles = new Set<Handle>();

/** Whether one copy of loop-lock holds the inode named "dev:ino" in this thread. */
type HoldsFile = (key: string) => boolean;

// Two installed copies of loop-lock (two versions in a monorepo) load two
// addons, with handles of their own: each copy registers how to ask it in a
// set that all copies of this thread share, so acquireBlocking() in one
// sees a lock held through another. globalThis is per thread, as is the
// question; the key names the inode as fileKey() does, in every version.
const HOLDERS_KEY = Symbol.for('loop-lock.holdsFile.v1');
const holders: Set<HoldsFile> = ((globalThis as Record<symbol, Set<HoldsFile> | undefined>)[HOLDERS_KEY] ??=
  new Set<HoldsFile>());
holders.add((key) => {
  if (liveHandles.size === 0) return false;
  const binding = native();
  for (const handle of liveHandles) {
    if (binding.fileKey(handle) === key) return true;
  }
  return false;
});

let warnedAboutGc = false;

// A guard dropped without release() still holds its descriptor; like Node's
// FileHandle, close it when collected and say so once, naming the path.
const registry = new FinalizationRegistry<readonly [Handle, string]>(([handle, lockPath]) => {
  liveHandles.delete(handle);
  native().close(handle);
  if (!warnedAboutGc) {
    warnedAboutGc = true;
    process.emitWarning(
      `Released loop lock '${lockPath}' on garbage collection. Call release() or hold the guard with \`using\`.`,
      { type: 'Warning', code: 'LOOP_LOCK_GC_RELEASE' },
    );
  }
});

const constructing = Symbol('LockGuard');

// A guard's handle, for the functions below the class (set in its static block).
let handleOf: (guard: LockGuard) => Handle | null;

/**
 * Proof that this process holds the lock. Hold on to it: the lock is
 * released by `release()`, by `using`, when the process exits or crashes,
 * and (with a warning) when the guard is garbage-collected.
 */
export class LockGuard implements Disposable {
  /** Absolute path of the lock file. */
  readonly lockPath: string;
  /** The metadata this guard wrote into the lock file. */
  readonly metadata: LockMetadata;
  #handle: Handle | null;

  /** @internal Guards come from `LoopLock`; they cannot be made directly. */
  constructor(token: symbol, handle: Handle, lockPath: string, metadata: LockMetadata) {
    if (token !== constructing) throw new TypeError('LockGuard is created by LoopLock.tryAcquire() and friends');
    this.#handle = handle;
    this.lockPath = lockPath;
    this.metadata = metadata;
    registry.register(this, [handle, lockPath], this);
  }

  static {
    handleOf = (guard) => guard.#handle;
  }

  /** True once `release()` has run (or the guard was disposed). */
  get released(): boolean {
    return this.#handle === null;
  }

  /**
   * Unlocks and closes the lock file. The file and its metadata stay: deleting
   * the file would let a waiter and a newcomer lock two different inodes.
   * Calling it again does nothing.
   */
  release(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    // Unlock first: a waiter may be woken by it, and the bookkeeping below
    // (the registry above all) is slow on the cold caches of a process that
    // has just been woken to release.
    native().close(handle);
    registry.unregister(this);
    liveHandles.delete(handle);
  }

  /** Same as `release()`, for `using guard = LoopLock.tryAcquire(...)`. */
  [Symbol.dispose](): void {
    this.release();
  }

  /**
   * Checks that the lock file at `lockPath` is still the file this guard
   * locked, with no other name: one `lstat` against the inode it opened, no
   * timers. If it was deleted (say by `rm -rf .ralph` or `git clean -fdx`) or
   * replaced, a newcomer can lock the new file while this guard still
   * "holds" the old one; if it was hard-linked, the file is someone else's too.
   */
  state(): GuardState {
    const handle = this.#handle;
    if (handle === null) return 'released';
    let identity: Identity;
    try {
      identity = native().identity(handle);
    } catch (error) {
      throw toLockError(error, this.lockPath);
    }
    return STATE_OF[identity];
  }

  /** `true` while the guard is unreleased and its file is still the one at `lockPath`. */
  isIntact(): boolean {
    return this.state() === 'held';
  }

  /**
   * Throws a `LockError` with code `'ECOMPROMISED'` when the lock file was
   * removed, replaced or hard-linked since this guard took it (see
   * `state()`), and code
   * `'ERELEASED'` when the guard was released. Call it before work that
   * must not run twice, such as a commit or a deploy.
   */
  verify(): void {
    const state = this.state();
    if (state === 'held') return;
    if (state === 'released') {
      throw new LockError(`Lock '${this.lockPath}' was released by this guard`, {
        code: 'ERELEASED',
        path: this.lockPath,
      });
    }
    throw new LockError(`Lock '${this.lockPath}' is compromised: ${COMPROMISE[state]}`, {
      code: 'ECOMPROMISED',
      path: this.lockPath,
    });
  }
}

/** Wraps a locked handle whose metadata is written. */
export function createGuard(handle: Handle, lockPath: string, metadata: LockMetadata): LockGuard {
  const guard = new LockGuard(constructing, handle, lockPath, metadata);
  liveHandles.add(handle);
  return guard;
}

/**
 * A guard made ahead of time for a handle that is still waiting for its
 * lock (`acquire()`). Registering a guard for garbage collection is the
 * costliest step in making one, tens of microseconds on the cold caches a
 * waiter wakes up to; made ahead, it is not between a release and the
 * waiter's resolve. Hand it out only after `activateGuard`, and pass any
 * other to `discardGuard` before its handle is closed.
 */
export function prepareGuard(handle: Handle, lockPath: string, pid: number, prompt: string): LockGuard {
  return new LockGuard(constructing, handle, lockPath, { pid, started: new Date(0), prompt });
}

/** Makes a prepared guard the holder's, once its record is written at `started` (ms). */
export function activateGuard(guard: LockGuard, started: number): LockGuard {
  guard.metadata.started.setTime(started);
  liveHandles.add(handleOf(guard) as Handle);
  return guard;
}

/** Forgets a prepared guard that never held its lock, so collecting it closes nothing. */
export function discardGuard(guard: LockGuard): void {
  registry.unregister(guard);
}

/** Whether an unreleased guard of this thread, of any copy of loop-lock, holds the inode named `key`. */
export function heldByThisThread(key: string): boolean {
  for (const holds of holders) {
    if (holds(key)) return true;
  }
  return false;
}
