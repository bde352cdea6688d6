import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LockError } from './errors.js';

/** The lock file's path inside a workspace, as the Rust reference names it. */
export const LOCK_FILE = '.ralph/loop.lock';

/** What to do when a lock file is on a network or FUSE filesystem (see `FilesystemKind`). */
export type NetworkFilesystemPolicy = 'warn' | 'error' | 'allow';

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

/** Options of `LoopLock.readExisting()`. */
export interface ReadOptions extends LockOptions {
  /**
   * Throw `LockParseError` for a file that holds something other than a
   * record (or over `MAX_METADATA_BYTES`), instead of returning `null`: for
   * tools that report a corrupt lock file.
   */
  strict?: boolean | undefined;
}

/** Options of `LoopLock.acquire()`. */
export interface AcquireOptions extends LockOptions {
  /** Aborting it rejects the pending acquire with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /**
   * Give up after this many milliseconds: the acquire rejects with a
   * `LockError` whose code is `'ETIMEDOUT'`. 0 tries once. With `signal`,
   * whichever comes first.
   */
  timeout?: number | undefined;
}

/** Options of `LoopLock.watch()`. */
export interface WatchOptions extends LockOptions {
  /** Aborting it ends the watch: the pending `next()` rejects with an `AbortError` whose `cause` is `signal.reason`. */
  signal?: AbortSignal | undefined;
  /**
   * Whether a live watch keeps the process alive, as with `fs.watch`
   * (default `true`). With `false` the process exits when nothing else
   * keeps it alive, watch or not.
   */
  persistent?: boolean | undefined;
}

/** The options of one call, checked and resolved: what lib/ passes on below the public class. */
export interface Resolved {
  /** The absolute lock path. */
  readonly lockPath: string;
  /** The `networkFilesystem` option, `'warn'` when absent. */
  readonly policy: NetworkFilesystemPolicy;
}

/** A path argument (a string or a `file:` URL) as a path string; `TypeError` for anything else or an empty one. */
export function toPathString(value: unknown, name: string): string {
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

// Resolved options of absolute workspace roots without options:
// path.resolve() is a good part of an isLocked() call, and a host asks about
// the same few workspaces over and over. Bounded, since roots come from
// callers.
const MAX_CACHED_ROOTS = 64;
const defaults = new Map<string, Resolved>();

/**
 * Checks a call's workspace root and options, and resolves them once: the
 * absolute lock path (so a guard's later identity checks do not depend on
 * the process's working directory) and the network filesystem policy.
 */
export function resolveOptions(workspaceRoot: unknown, options: LockOptions | undefined): Resolved {
  if (options === undefined && typeof workspaceRoot === 'string') {
    const cached = defaults.get(workspaceRoot);
    if (cached !== undefined) return cached;
  }
  const root = toPathString(workspaceRoot, 'workspaceRoot');
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('The "options" argument must be an object');
  }
  const policy = options?.networkFilesystem === undefined ? 'warn' : options.networkFilesystem;
  if (policy !== 'warn' && policy !== 'error' && policy !== 'allow') {
    throw new TypeError(`The "options.networkFilesystem" option must be 'warn', 'error' or 'allow'`);
  }
  const lockFile = options?.lockFile === undefined ? LOCK_FILE : toPathString(options.lockFile, 'options.lockFile');
  const lockPath = resolve(root, lockFile);
  refuseNul(lockPath);
  const resolved: Resolved = { lockPath, policy };
  // Only absolute roots: a relative one resolves against a working directory
  // that may change between calls.
  if (options === undefined && isAbsolute(root) && defaults.size < MAX_CACHED_ROOTS) defaults.set(root, resolved);
  return resolved;
}

/** Throws a `LockError` `'EINVAL'` naming `lockPath` when it holds a NUL byte, which no system call takes. */
export function refuseNul(lockPath: string): void {
  if (!lockPath.includes('\0')) return;
  // Control characters escaped as JSON escapes them, and nothing else:
  // a Windows path's backslashes stay as they are.
  const shown = lockPath.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
  throw new LockError(`EINVAL: the lock path contains a NUL byte '${shown}'`, {
    code: 'EINVAL',
    path: lockPath,
  });
}

/** The absolute lock path of a workspace (see `resolveOptions`). */
export function lockPathOf(workspaceRoot: unknown, options: LockOptions | undefined): string {
  return resolveOptions(workspaceRoot, options).lockPath;
}

/** The `strict` option of `readExisting()`. */
export function strictOf(options: ReadOptions | undefined): boolean {
  const strict = options?.strict;
  if (strict !== undefined && typeof strict !== 'boolean') {
    throw new TypeError(`The "options.strict" argument must be a boolean, received type ${typeof strict}`);
  }
  return strict === true;
}

/** The `signal` option of `acquire()` and `watch()`. */
export function signalOf(options: AcquireOptions | WatchOptions | undefined): AbortSignal | undefined {
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError('The "options.signal" argument must be an AbortSignal');
  }
  return signal;
}

/** The `persistent` option of `watch()`: `true` when absent. */
export function persistentOf(options: WatchOptions | undefined): boolean {
  const persistent = options?.persistent;
  if (persistent !== undefined && typeof persistent !== 'boolean') {
    throw new TypeError(`The "options.persistent" argument must be a boolean, received type ${typeof persistent}`);
  }
  return persistent !== false;
}
