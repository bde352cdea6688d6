import { join } from 'node:path';
import { UnsupportedPlatformError } from './errors.js';

/** An open lock file owned by the addon; closed by `close`, its finalizer, or environment teardown. */
export interface Handle {
  readonly __brand: 'LoopLockHandle';
}

/** How a held descriptor relates to what is at its path now (see `identity`). */
export const enum Identity {
  Same = 0,
  Removed = 1,
  Replaced = 2,
}

/** How a wait ended, when it did not fail. */
export const enum WaitOutcome {
  /** The lock is held through the waited-on handle. */
  Locked = 0,
  /** The file at the path is no longer the handle's: reopen and wait again. */
  Stale = 1,
}

/** The shape the binding throws (and passes to wait callbacks) on failure. */
export interface NativeFailure {
  errno: number;
  syscall: string;
}

/**
 * The addon's surface. Every function that fails throws an object with
 * `errno` and `syscall`, which `toLockError` turns into a `LockError`.
 */
export interface Binding {
  /** Opens with O_CLOEXEC|O_NOFOLLOW; `create` adds O_RDWR|O_CREAT (mode 0644), else O_RDONLY. */
  open(path: string, create: boolean): Handle;
  /** flock(LOCK_NB): true when taken, false when another holder conflicts. */
  tryLock(handle: Handle, shared: boolean): boolean;
  /** flock(LOCK_EX), blocking the calling thread. */
  lockBlocking(handle: Handle): void;
  /** pwrite of the whole text at offset 0, then ftruncate to its length. */
  write(handle: Handle, text: string): void;
  /** The file's text; a number (> maxBytes) when larger, null when not UTF-8. */
  read(handle: Handle, maxBytes: number): string | number | null;
  /** Whether the descriptor's inode is still the one at its path. */
  identity(handle: Handle): Identity;
  /** "dev:ino" of the descriptor's inode. */
  fileKey(handle: Handle): string;
  /** Unlocks and closes; idempotent. */
  close(handle: Handle): void;
  /**
   * Waits on the event loop, without a thread, until flock(LOCK_EX) on
   * `handle` succeeds; `directory` and `name` locate the file for inotify.
   * Calls back exactly once unless cancelled. Returns the wait's id.
   */
  wait(
    handle: Handle,
    directory: string,
    name: string,
    callback: (outcome: WaitOutcome | NativeFailure) => void,
  ): number;
  /** Stops a wait; its callback is never called. Unknown ids are ignored. */
  cancelWait(id: number): void;
}

const SUPPORTED = new Set(['linux', 'darwin']);

let binding: Binding | undefined;

/**
 * The addon, loaded on first use so that importing loop-lock never fails:
 * an unsupported platform learns so when it calls, not when it imports.
 */
export function native(): Binding {
  if (binding !== undefined) return binding;
  if (!SUPPORTED.has(process.platform)) throw new UnsupportedPlatformError();
  const load = require('node-gyp-build') as (dir: string) => Binding;
  binding = load(join(__dirname, '..'));
  return binding;
}
