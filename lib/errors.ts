import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { isoTime } from './civil-time.js';
import type { LockMetadata } from './metadata.js';

/** Fields that locate a failure: the errno name, the syscall and the path. */
export interface LockErrorDetails {
  code: string;
  path?: string | undefined;
  syscall?: string | undefined;
  errno?: number | undefined;
  cause?: unknown;
}

// Brands that make `instanceof` hold across installed copies of loop-lock
// (two versions in one process): a copy's error is not an instance of
// another copy's class, but carries the same brand. Each class puts its own
// on its prototype; a subclass defined elsewhere has none and gets the
// ordinary check.
const brands = new WeakMap<object, symbol>();

function brand(errorClass: abstract new (...args: never[]) => LockError, name: string): void {
  const symbol = Symbol.for(`loop-lock.${name}`);
  brands.set(errorClass, symbol);
  Object.defineProperty(errorClass.prototype, symbol, { value: true });
}

/**
 * Base class of every error loop-lock throws (apart from `TypeError` and
 * `RangeError` for arguments of the wrong type or size). `code` is stable:
 * an errno name such as `'EACCES'` for I/O failures, or one of loop-lock's
 * own codes (`'ELOCKED'`, `'EPARSE'`, `'ECOMPROMISED'`, `'EDEADLK'`,
 * `'ENOTSUP'`, `'ENOBUILD'`).
 */
export class LockError extends Error {
  /** A stable, machine-readable code. */
  readonly code: string;
  /** The lock file (or directory) the failure concerns, when there is one. */
  readonly path: string | undefined;
  /** The system call that failed, for I/O errors. */
  readonly syscall: string | undefined;
  /** The negated errno, as Node reports it, for I/O errors. */
  readonly errno: number | undefined;

  constructor(message: string, details: LockErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.path = details.path;
    this.syscall = details.syscall;
    this.errno = details.errno;
  }

  override get name(): string {
    return this.constructor.name;
  }

  /**
   * `instanceof` that also recognizes the errors of another installed copy
   * of loop-lock, for this class and every loop-lock subclass of it.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const symbol = brands.get(this);
    if (symbol === undefined || typeof value !== 'object' || value === null) return false;
    return (value as Record<symbol, unknown>)[symbol] === true;
  }
}
brand(LockError, 'LockError');

/**
 * The lock is held by another open file description: another process,
 * another thread, or another guard in this very thread. `holder` is the
 * holder's metadata, or `null` when the record in the file is not the
 * holder's for sure: not (yet) a complete record, or one whose pid does not
 * hold the lock (a past holder's, under a new holder that has not written
 * yet or a foreign one that writes none, or a dead holder's).
 *
 * It carries no stack trace: it is an expected answer rather than a fault,
 * it always comes straight from `tryAcquire`, and capturing a stack would
 * cost more than the whole flock() round trip it reports.
 */
export class AlreadyLockedError extends LockError {
  /** The current holder, when the record in the file is its own. */
  readonly holder: LockMetadata | null;

  constructor(path: string, holder: LockMetadata | null) {
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(
        holder === null
          ? `Lock '${path}' is held (the record in it is not its holder's)`
          : `Lock '${path}' is held by pid ${holder.pid} since ${isoTime(holder.started.getTime())}`,
        { code: 'ELOCKED', path },
      );
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.holder = holder;
  }
}
brand(AlreadyLockedError, 'AlreadyLockedError');

/**
 * The lock file's content is not a metadata record loop-lock can trust.
 * Thrown only by `readExisting(..., { strict: true })`: everywhere else such
 * a file means "no record", as it does to the Rust reference.
 */
export class LockParseError extends LockError {
  constructor(path: string, reason: string, cause?: unknown) {
    super(`Cannot read lock metadata in '${path}': ${reason}`, { code: 'EPARSE', path, cause });
  }
}
brand(LockParseError, 'LockParseError');

/** This platform has neither `flock()` nor `LockFileEx`: loop-lock supports Linux, macOS and Windows. */
export class UnsupportedPlatformError extends LockError {
  constructor(platform: string = process.platform) {
    super(`loop-lock has no lock for platform '${platform}' (supported: linux, darwin, win32)`, {
      code: 'ENOTSUP',
    });
  }
}
brand(UnsupportedPlatformError, 'UnsupportedPlatformError');

/**
 * How the addon fails, thrown or passed to a wait's callback alike (see
 * native/delivery.h): an Error with the errno and the syscall that failed.
 */
export interface NativeFailure extends Error {
  errno: number;
  /** Absent when no syscall ran (EBADF for a handle that names no open file). */
  syscall?: string;
}

/** Whether `error` is the addon's failure (a node:fs error also passes: `toLockError` tells it first). */
export function isNativeFailure(error: unknown): error is NativeFailure {
  if (typeof error !== 'object' || error === null) return false;
  const { errno, syscall } = error as NativeFailure;
  return typeof errno === 'number' && (syscall === undefined || typeof syscall === 'string');
}

// Plainer words for the failures bad input causes, keyed by "code syscall"
// (CreateFileW opens on Windows).
const hints: Readonly<Record<string, string>> = {
  'ELOOP open': 'the lock path is a symbolic link, which loop-lock refuses to follow',
  'ELOOP CreateFileW': 'the lock path is a symbolic link or another reparse point, which loop-lock refuses to follow',
  'EINVAL open': 'the lock path is not a regular file',
  'EMLINK open': 'the lock file has other hard links, so writing it would change another file',
  'EMLINK CreateFileW': 'the lock file has other hard links, so writing it would change another file',
  'EMLINK lstat': 'the lock file gained another hard link, so writing it would change another file',
  'EINVAL CreateFileW': 'the lock path is not a regular file',
  'ENOTDIR open': 'a component of the path is not a directory',
  'ENOTDIR mkdir': 'a component of the path is not a directory',
};

/**
 * Whether a failure from the binding or `node:fs` is the errno named
 * `code`. By name, not number: the addon numbers errors as libuv does
 * (negated), which on Windows is not `os.constants.errno`'s numbering.
 */
export function isErrno(error: unknown, code: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if (typeof (error as NodeJS.ErrnoException).code === 'string') return (error as NodeJS.ErrnoException).code === code;
  return isNativeFailure(error) && getSystemErrorName(-error.errno) === code;
}

/**
 * Turns a failure from the native binding or from `node:fs` into a
 * `LockError` named after its errno, with the path in the message. This is
 * the one place where errno numbers become names.
 */
export function toLockError(error: unknown, path: string): LockError {
  if (error instanceof LockError) return error;
  let errno: number | undefined;
  let syscall: string | undefined;
  let code = 'EIO';
  // A node:fs error also has a numeric errno and a syscall, but its errno is
  // already negative and its code already named: test for it first.
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string') {
    const fsError = error as NodeJS.ErrnoException;
    errno = fsError.errno;
    syscall = fsError.syscall;
    code = fsError.code as string;
  } else if (isNativeFailure(error)) {
    errno = -error.errno;
    syscall = error.syscall;
    code = getSystemErrorName(errno);
  }
  const description =
    hints[`${code} ${syscall}`] ??
    (errno === undefined ? String(error) : (getSystemErrorMap().get(errno)?.[1] ?? code));
  const where = syscall === undefined ? '' : `, ${syscall}`;
  return new LockError(`${code}: ${description}${where} '${path}'`, { code, path, syscall, errno, cause: error });
}
