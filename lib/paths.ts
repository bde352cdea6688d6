import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LockError } from './errors.js';
import type { NetworkFilesystemPolicy } from './filesystem.js';

/** The lock file's path inside a workspace, as the Rust reference names it. */
export const LOCK_FILE = '.ralph/loop.lock';

/** Options every `LoopLock` call takes. */
export interface LockOptions {
  /**
   * The lock file, relative to the workspace root (an absolute path is used
   * as it is). Defaults to `LOCK_FILE`, `.ralph/loop.lock`.
   */
  lockFile?: string | undefined;
  /**
   * What to do when the lock file is on a network or FUSE filesystem, where
   * `flock()` may not exclude every other holder: `'warn'` (the default)
   * emits one process warning per lock path, `'error'` refuses with a
   * `LockError` whose code is `'ENETFS'`, `'allow'` skips the check. The
   * calls that lock or probe check it with an `fstatfs`, whose answer each
   * thread keeps for a second, for the 64 lock paths it read last.
   */
  networkFilesystem?: NetworkFilesystemPolicy | undefined;
}

function toPathString(value: unknown, name: string): string {
  if (value instanceof URL) {
    if (value.protocol !== 'file:') {
      throw new TypeError(`The "${name}" argument must be a file: URL, received ${value.protocol} URL`);
    }
    return fileURLToPath(value);
  }
  if (typeof value !== 'string') {
    throw new TypeError(
      `The "${name}" argument must be a string or a file: URL, received ${value === null ? 'null' : typeof value}`,
    );
  }
  if (value === '') throw new TypeError(`The "${name}" argument must not be empty`);
  return value;
}

// Resolved default lock paths of absolute workspace roots: path.resolve()
// is a good part of an isLocked() call, and a host asks about the same few
// workspaces over and over. Bounded, since roots come from callers.
const MAX_CACHED_ROOTS = 64;
const defaultLockPaths = new Map<string, string>();

/**
 * Resolves the absolute lock path for a workspace. Absolute, so a guard's
 * later identity checks do not depend on the process's working directory.
 */
export function lockPathOf(workspaceRoot: unknown, options: LockOptions | undefined): string {
  if (options === undefined && typeof workspaceRoot === 'string') {
    const cached = defaultLockPaths.get(workspaceRoot);
    if (cached !== undefined) return cached;
  }
  const root = toPathString(workspaceRoot, 'workspaceRoot');
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('The "options" argument must be an object');
  }
  const policy = options?.networkFilesystem;
  if (policy !== undefined && policy !== 'warn' && policy !== 'error' && policy !== 'allow') {
    throw new TypeError(`The "options.networkFilesystem" option must be 'warn', 'error' or 'allow'`);
  }
  const lockFile = options?.lockFile === undefined ? LOCK_FILE : toPathString(options.lockFile, 'options.lockFile');
  const lockPath = resolve(root, lockFile);
  if (lockPath.includes('\0')) {
    // Control characters escaped as JSON escapes them, and nothing else:
    // a Windows path's backslashes stay as they are.
    const shown = lockPath.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
    throw new LockError(`EINVAL: the lock path contains a NUL byte '${shown}'`, {
      code: 'EINVAL',
      path: lockPath,
    });
  }
  // Only absolute roots: a relative one resolves against a working directory
  // that may change between calls.
  if (options === undefined && isAbsolute(root) && defaultLockPaths.size < MAX_CACHED_ROOTS) {
    defaultLockPaths.set(root, lockPath);
  }
  return lockPath;
}
