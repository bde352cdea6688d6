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
