import { LockError } from './errors.js';
import { type Handle, native } from './native.js';

/** A file lock's mode: `flock(LOCK_SH)` for readers, `flock(LOCK_EX)` for a writer. */
export type FileLockMode = 'shared' | 'exclusive';

/**
 * A locked handle, apart from its guard: what the FinalizationRegistry and
 * the deadlock check hold, so that neither keeps a guard from being collected.
 */
interface Held {
  readonly handle: Handle;
  readonly lockPath: string;
  readonly mode: FileLockMode;
  // "dev:ino", read once and only when a deadlock check asks.
  key?: string;
}

// This thread's unreleased locks, so a blocking wait can refuse to wait for
// a lock that this very thread holds in a conflicting mode.
const live = new Set<Held>();

let warnedAboutGc = false;

// A guard dropped without release() still holds its descriptor; like Node's
// FileHandle (and the loop lock's guard), close it when collected and say so
// once, naming the path.
const registry = new FinalizationRegistry<Held>((held) => {
  close(held);
  if (!warnedAboutGc) {
    warnedAboutGc = true;
    process.emitWarning(
      `Released file lock '${held.lockPath}' on garbage collection. Call release() or hold the guard with \`using\`.`,
      { type: 'Warning', code: 'LOOP_LOCK_GC_RELEASE' },
    );
  }
});

function close(held: Held): void {
  native().close(held.handle);
  live.delete(held);
}

const constructing = Symbol('FileLockGuard');

/**
 * Proof that this process holds a file lock in `mode`. Hold on to it: the
 * lock is released by `release()`, by `using`, when the process exits or
 * crashes, and (with a warning) when the guard is garbage-collected.
 */
export class FileLockGuard implements Disposable {
  /** Absolute path of the lock file (the sidecar, not the file it guards). */
  readonly lockPath: string;
  readonly mode: FileLockMode;
  #held: Held | null;

  /** @internal Guards come from `FileLock`; they cannot be made directly. */
  constructor(token: symbol, handle: Handle, lockPath: string, mode: FileLockMode) {
    if (token !== constructing) throw new TypeError('FileLockGuard is created by FileLock.tryShared() and friends');
    this.lockPath = lockPath;
    this.mode = mode;
    const held: Held = { handle, lockPath, mode };
    this.#held = held;
    live.add(held);
    registry.register(this, held, this);
  }

  /** True once `release()` has run (or the guard was disposed). */
  get released(): boolean {
    return this.#held === null;
  }

  /** Unlocks and closes the lock file, which stays. Calling it again does nothing. */
  release(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    close(held);
    registry.unregister(this);
  }

  /** Same as `release()`, for `using guard = lock.tryShared()`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** Hands out a guard for a handle just locked in `mode`. */
export function guardFor(handle: Handle, lockPath: string, mode: FileLockMode): FileLockGuard {
  return new FileLockGuard(constructing, handle, lockPath, mode);
}

/**
 * Refuses a blocking wait for `mode` on the inode named `key` that can only
 * deadlock: this thread holds a lock on it that conflicts (any lock when
 * waiting for exclusive, an exclusive one when waiting for shared), and
 * cannot release it while it waits.
 */
export function refuseSelfDeadlock(key: string, lockPath: string, mode: FileLockMode): void {
  for (const held of live) {
    if (mode === 'shared' && held.mode === 'shared') continue;
    if ((held.key ??= native().fileKey(held.handle)) !== key) continue;
    throw new LockError(
      `EDEADLK: this thread holds ${held.mode} lock '${lockPath}'; ` +
        `${mode === 'shared' ? 'sharedBlocking' : 'exclusiveBlocking'}() would wait for itself forever`,
      { code: 'EDEADLK', path: lockPath },
    );
  }
}
