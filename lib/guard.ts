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

/** Whether one copy of loop-lock holds the inode named "dev:ino" in this thread. */
type HoldsFile = (key: string) => boolean;

// The holdings of this thread's unreleased guards, so acquireBlocking() can
// refuse to wait for a lock this very thread holds (it could only deadlock).
const live = new Set<Holding>();

// Two installed copies of loop-lock (two versions in a monorepo) load two
// addons, with handles of their own: each copy registers how to ask it in a
// set that all copies of this thread share, so acquireBlocking() in one
// sees a lock held through another. globalThis is per thread, as is the
// question; the key names the inode as fileKey() does, in every version.
const HOLDERS_KEY = Symbol.for('loop-lock.holdsFile.v1');
const holders: Set<HoldsFile> = ((globalThis as Record<symbol, Set<HoldsFile> | undefined>)[HOLDERS_KEY] ??=
  new Set<HoldsFile>());
holders.add((key) => {
  for (const holding of live) {
    if (holding.fileKey() === key) return true;
  }
  return false;
});

let warnedAboutGc = false;

// A guard dropped without release() still holds its descriptor; like Node's
// FileHandle, close it when collected and say so once, naming the path.
const registry = new FinalizationRegistry<Holding>((holding) => {
  holding.close();
  if (!warnedAboutGc) {
    warnedAboutGc = true;
    process.emitWarning(
      `Released loop lock '${holding.lockPath}' on garbage collection. Call release() or hold the guard with \`using\`.`,
      { type: 'Warning', code: 'LOOP_LOCK_GC_RELEASE' },
    );
  }
});

const constructing = Symbol('LockGuard');

// A guard's holding, for the few parts of lib/ that act on its handle (see
// handleOf); set by LockGuard's static block, which alone can read it.
let holdingOf: (guard: LockGuard) => Holding;

/**
 * Where a holding is in its life: `waiting` for its lock, its guard made
 * ahead but not handed out; `held`, its guard handed out; `closed`, its
 * handle closed (released, collected, or given up while waiting).
 */
type HoldingState = 'waiting' | 'held' | 'closed';

/**
 * A lock file handle from the moment a guard is made for it until it is
 * closed: what a `LockGuard` stands for, kept apart from the guard so that
 * lib/ drives the lifecycle through named steps (`hold`, `abandon`,
 * `close`) instead of reaching into the guard.
 */
export class Holding {
  readonly lockPath: string;
  // The guard until it is handed out or given up: the registry holds this
  // holding strongly, so it must not keep a guard from being collected.
  #guard: LockGuard | null;
  #state: HoldingState = 'waiting';
  #handle: Handle;
  // The record's time, set by hold(): the guard's metadata shares it.
  readonly #started = new Date(0);
  // "dev:ino", read once and only when a deadlock check asks.
  #key: string | undefined;

  /**
   * A holding, with its guard, for a handle that is still waiting for its
   * lock (`acquire()`). Registering a guard for garbage collection is the
   * costliest step in making one, tens of microseconds on the cold caches
   * a waiter wakes up to; made ahead, it is not between a release and the
   * waiter's resolve. `hold` hands the guard out; `abandon` gives it up.
   */
  constructor(handle: Handle, lockPath: string, pid: number, prompt: string) {
    this.#handle = handle;
    this.lockPath = lockPath;
    this.#guard = new LockGuard(constructing, this, { pid, started: this.#started, prompt });
    registry.register(this.#guard, this, this);
  }

  /** Wraps a handle that is locked and whose record was written at `started` (ms). */
  static held(handle: Handle, lockPath: string, pid: number, prompt: string, started: number): LockGuard {
    return new Holding(handle, lockPath, pid, prompt).hold(started);
  }

  get state(): HoldingState {
    return this.#state;
  }

  /** The handle, while not closed. */
  get handle(): Handle | null {
    return this.#state === 'closed' ? null : this.#handle;
  }

  /** Waiting to held, once the lock is taken and the record written at `started` (ms): hands out the guard. */
  hold(started: number): LockGuard {
    const guard = this.#guard as LockGuard;
    this.#guard = null;
    this.#started.setTime(started);
    this.#state = 'held';
    live.add(this);
    return guard;
  }

  /** Waiting to closed: the lock was never held through this handle, so collecting the guard has nothing to do. */
  abandon(): void {
    this.#guard = null;
    registry.unregister(this);
    this.close();
  }

  /** Unlocks and closes the handle, from any state; idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    // Unlock first: a waiter may be woken by it, and the bookkeeping after
    // it (the registry above all) is slow on the cold caches of a process
    // that has just been woken to release.
    native().close(this.#handle);
    live.delete(this);
  }

  /** Releases a held guard: closes and forgets it. */
  release(): void {
    if (this.#state === 'closed') return;
    this.close();
    registry.unregister(this);
  }

  /** "dev:ino" of the locked inode. */
  fileKey(): string {
    return (this.#key ??= native().fileKey(this.#handle));
  }
}

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
  readonly #holding: Holding;

  static {
    holdingOf = (guard) => guard.#holding;
  }

  /** @internal Guards come from `LoopLock`; they cannot be made directly. */
  constructor(token: symbol, holding: Holding, metadata: LockMetadata) {
    if (token !== constructing) throw new TypeError('LockGuard is created by LoopLock.tryAcquire() and friends');
    this.#holding = holding;
    this.lockPath = holding.lockPath;
    this.metadata = metadata;
  }

  /** True once `release()` has run (or the guard was disposed). */
  get released(): boolean {
    return this.#holding.state === 'closed';
  }

  /**
   * Unlocks and closes the lock file. The file and its metadata stay: deleting
   * the file would let a waiter and a newcomer lock two different inodes.
   * Calling it again does nothing.
   */
  release(): void {
    this.#holding.release();
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
    const handle = this.#holding.handle;
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

/** Whether an unreleased guard of this thread, of any copy of loop-lock, holds the inode named `key`. */
export function heldByThisThread(key: string): boolean {
  for (const holds of holders) {
    if (holds(key)) return true;
  }
  return false;
}

/**
 * The handle a guard holds its lock through, `null` once released: for
 * `loop-lock run` (lib/cli-run.ts), which hands its descriptor to the
 * command and names the command as the holder. Not part of the package's API.
 */
export function handleOf(guard: LockGuard): Handle | null {
  return holdingOf(guard).handle;
}
