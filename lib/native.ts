import { closeSync, openSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LockError, type NativeFailure, toLockError, UnsupportedPlatformError } from './errors.js';
import { fitLibc, libc } from './libc.js';

/**
 * An open lock file: an id into the addon's per-thread table, closed by
 * `close` or when the thread's environment is torn down. A guard that is
 * collected unreleased closes its handle through a FinalizationRegistry.
 */
export type Handle = number & { readonly __brand: 'LoopLockHandle' };

/** How a held descriptor relates to what is at its path now (see `identity`). */
export const enum Identity {
  Same = 0,
  Removed = 1,
  Replaced = 2,
  /** The inode is at its path, and has other hard links too. */
  Linked = 3,
}

/** How a wait ended, when it did not fail. */
export const enum WaitOutcome {
  /** The lock is held through the waited-on handle. */
  Locked = 0,
  /** The file at the path is no longer the handle's: reopen and wait again. */
  Stale = 1,
}

/** Where `Binding.found` keeps what `attempt` and `inspect` found besides a held file's record. */
export const enum FoundSlot {
  /** The handle kept open for `heldBy`; 0 when the file was closed. */
  Handle = 0,
  /** The pid the file's holder mark names; 0 when it has none; -1 when another lock kept it from being read. */
  MarkedPid = 1,
}

/** What a directory of a native watch is watched for (native/watcher.h). */
export const enum WatchRole {
  /** Only its own removal or move. */
  Ancestor = 0,
  /** Also the next name on the path appearing or going away. */
  Parent = 1,
  /** Also the lock file: opened, written, closed, created, removed. */
  LockDir = 2,
}

/** Bits a native watch calls back with (native/watcher.h). */
export const enum WatchEvent {
  /** The lock file was written (a holder's record). */
  Written = 1,
  /** ... closed: a holder may be about to unlock. */
  Closed = 2,
  /** ... opened: a holder may be about to lock. */
  Opened = 4,
  /** A file was created, removed or renamed at its name. */
  Named = 8,
  /** A directory of its path was moved, removed or created. */
  PathChanged = 16,
  /**
   * The lock file was closed by a descriptor open for writing: a holder's
   * (loop-lock's, the Rust loop's; readers open it read-only), whose exit
   * may have closed it while still holding the lock.
   */
  WriterClosed = 32,
}

/**
 * The addon's surface. Every function that fails throws an object with
 * `errno` and `syscall`, which `toLockError` turns into a `LockError`.
 * `errno` is positive, and its negation is libuv's code for the error (as
 * `util.getSystemErrorName` takes it): errno on POSIX, a Win32 error
 * translated in the addon on Windows. On Windows the lock is `LockFileEx`
 * on one byte far past the record, where POSIX says `flock()` below. An
 * argument of another type is a `TypeError`, a size or pid out of range a
 * `RangeError` (see native/arguments.h): lib/ never passes either.
 */
export interface Binding {
  /**
   * Opens with O_CLOEXEC|O_NOFOLLOW; `create` adds O_RDWR|O_CREAT (mode 0666 less the umask)
   * and refuses a file with other hard links (EMLINK), else O_RDONLY.
   */
  open(path: string, create: boolean): Handle;
  /**
   * One attempt at the lock in one call: opens `path` as `open(path, true)`
   * does, takes flock(LOCK_EX|LOCK_NB) (trying again for up to 10 ms while
   * only probes' shared locks refuse it), then claims it as `claim` does,
   * with the record stamped `started` (ms since the epoch). Returns the
   * handle, holding the lock; 0, closed, when the file at the path is no
   * longer the one locked (stale: reopen); when another holder has it, its
   * record as `inspect` returns one (`found` says what else it found), or
   * the handle negated, open and unlocked, when the record is no text.
   * Fails with ENOENT when a directory of the path is missing, and with
   * EMLINK as `claim` does.
   */
  attempt(path: string, pid: number, promptJson: string, started: number): number | string;
  /**
   * `attempt` on a handle already open, for the try before a wait and each
   * try of the poll: flock(LOCK_SH when `shared`, else LOCK_EX, without the
   * probes' patience), then the claim unless `promptJson` is null (no
   * record: a FileLock; `pid` is then ignored); when refused, whether the
   * path still names the file. Returns as `attempt` does (the handle, the
   * handle negated, 0 when stale), but leaves the handle open whatever it
   * found: its caller owns it.
   */
  attemptOn(handle: Handle, pid: number, promptJson: string | null, started: number, shared?: boolean): number;
  /** flock(LOCK_NB): true when taken, false when another holder conflicts. */
  tryLock(handle: Handle, shared: boolean): boolean;
  /**
   * Waits in the calling thread until flock(LOCK_SH when `shared`, else
   * LOCK_EX) on `handle` succeeds, as `wait` does on the event loop
   * (`directory` and `name` locate the file), and claims it for `pid` as
   * `wait` does. Returns the record's stamp (ms since the epoch) once
   * locked and claimed; `WaitOutcome.Locked` once locked when `promptJson`
   * is absent or null (no record: a FileLock); `WaitOutcome.Stale` when the
   * file at the path is no longer the handle's. Returns undefined only when
   * the thread's environment is being torn down (a worker's termination),
   * after which no JavaScript runs.
   */
  lockBlocking(
    handle: Handle,
    directory: string,
    name: string,
    shared: boolean,
    pid?: number,
    promptJson?: string | null,
  ): number | undefined;
  /**
   * Once the lock is taken: checks that the file at the path is still the
   * one opened, and writes the record (see native/record.h), stamped now.
   * Returns the stamp (ms since the epoch), or null, writing nothing, when
   * the file was removed or replaced since it was opened; fails with EMLINK,
   * writing nothing, when it gained another hard link. Marks `pid` as the
   * holder unless `mark` is false (see LockFile::Claim in native/lock_file.h).
   */
  claim(handle: Handle, pid: number, promptJson: string, mark?: boolean): number | null;
  /**
   * The file's text. Fails with EFBIG when it is larger than maxBytes (an
   * integer from 0 to 1 MiB, MAX_METADATA_BYTES) and with EILSEQ when it is
   * not UTF-8: the file holds no record (lib/lock-file.ts decodes both).
   */
  read(handle: Handle, maxBytes: number): string;
  /**
   * Opens read-only, takes flock(LOCK_SH|LOCK_NB) and closes, in one call:
   * whether someone holds the lock; false when there is no file.
   */
  probe(path: string): boolean;
  /**
   * Opens read-only and probes as `probe` does; when the lock is held,
   * reads the record and the file's holder mark in the same call: returns
   * the record's text (as `read` with MAX_METADATA_BYTES), with `found`
   * set, or the handle, open, when the file holds no text (for `read` to
   * say why). 0 when nobody holds the lock or there is no file.
   */
  inspect(path: string): Handle | 0 | string;
  /**
   * What `attempt` or `inspect` found besides the record they returned,
   * until the next such call (see `FoundSlot`): the handle kept open for
   * `heldBy` (the caller closes it), 0 when the file carried a mark and was
   * closed; the pid that mark names (it holds the lock), 0 when there was
   * none, -1 when a lock other than a mark (an fcntl() user's) hid it. Absent only if the addon could
   * not allocate it, and then those calls return handles, never records.
   */
  readonly found?: Float64Array;
  /**
   * Whether process `pid` holds the lock on the handle's inode, for a record
   * stamped `started` (ms since the epoch). Linux asks the kernel: a
   * descriptor of the process's own that holds it (/proc/<pid>/fdinfo), or
   * where that cannot be read /proc/locks; and a process that started more
   * than 2 s after `started` did not write the record (its pid was reused).
   * Where the kernel cannot say, whether `pid` is alive. `mayBeMarked`
   * false skips looking for the pid's holder mark, for a caller that
   * `found` told there is none; `close` closes the handle after, in the
   * same call.
   */
  heldBy(handle: Handle, pid: number, started: number, mayBeMarked?: boolean, close?: boolean): boolean;
  /**
   * Drops the handle's lock and keeps it open: the probe of a watch, whose
   * descriptor stays open so that probing makes no inotify event (see
   * lib/watch.ts).
   */
  unlock(handle: Handle): void;
  /** Whether the descriptor's inode is still the one at its path. */
  identity(handle: Handle): Identity;
  /** "dev:ino" of the descriptor's inode. */
  fileKey(handle: Handle): string;
  /**
   * fstatfs: the magic number (Linux f_type) or type name (macOS f_fstypename);
   * on Windows the volume's type name, prefixed `remote:` on a remote volume.
   */
  filesystem(handle: Handle): number | string;
  /** Unlocks and closes; idempotent. */
  close(handle: Handle): void;
  /**
   * Windows: ends every process this one starts from now on when this one
   * ends, killed included (a Job Object with KILL_ON_JOB_CLOSE). Throws
   * ENOTSUP on POSIX.
   */
  killChildrenOnExit(): void;
  /**
   * The file descriptor behind `handle`, for `loop-lock run` to hand to its
   * command (see native/process.h). Throws ENOTSUP on Windows.
   */
  descriptor(handle: Handle): number;
  /**
   * Waits on the event loop, without a thread, until flock(LOCK_SH when
   * `shared`, else LOCK_EX) on `handle` succeeds, then claims it as `claim`
   * does, unless `promptJson` is null (a FileLock writes no record; `pid` is
   * then ignored); `directory` and `name` locate the file for inotify.
   * Calls back exactly once unless cancelled, failure first: `(failure)`,
   * or `(null, outcome)` with `started` (claim's stamp) when the outcome is
   * Locked after a claim.
   * Returns the wait's id. Absent where the addon cannot watch the event
   * loop (Bun, Deno: `RunsOnNode` in native/binding.cc); see lib/wait.ts.
   */
  wait?(
    handle: Handle,
    directory: string,
    name: string,
    shared: boolean,
    pid: number,
    promptJson: string | null,
    callback: (failure: NativeFailure | null, outcome?: WaitOutcome, started?: number) => void,
  ): number;
  /** Stops a wait; its callback is never called. Unknown ids are ignored. Absent with `wait`. */
  cancelWait?(id: number): void;
  /**
   * Watches directories with inotify (see native/watcher.h): `roles[i]` and
   * `names[i]` say what matters in `directories[i]`. Calls back with the
   * `WatchEvent` bits seen since the last call. Returns the watch's id, or
   * null where there is no inotify; fails with ENOENT or ENOTDIR when a
   * directory went away since it was listed. A watch that is not
   * `persistent` does not keep the event loop alive. Absent, like `wait`,
   * where the addon cannot watch the event loop (Bun, Deno); see
   * lib/watch-feed.ts.
   */
  watchPaths?(
    directories: string[],
    roles: WatchRole[],
    names: string[],
    callback: (events: number) => void,
    persistent: boolean,
  ): number | null;
  /** Stops a watch; its callback is never called again. Unknown ids are ignored. Absent with `watchPaths`. */
  unwatchPaths?(id: number): void;
  /**
   * A time as records hold it (Date#toISOString's form). Only in a test
   * build (`npm test` defines LOOP_LOCK_TEST_EXPORTS; see native/binding.cc).
   */
  formatTimestamp?(ms: number): string;
}

const SUPPORTED = new Set(['linux', 'darwin', 'win32']);

let binding: Binding | undefined;

/**
 * The addon, loaded on first use so that importing loop-lock never fails:
 * an unsupported platform learns so when it calls, not when it imports.
 *
 * @throws LockError `'ENOBUILD'` when no build of the addon fits this
 * system, saying how to build one; a LockError named after the errno
 * (`'EMFILE'`, `'ENFILE'`) when the process can open no file; any other
 * load failure as it is.
 */
export function native(): Binding {
  if (binding !== undefined) return binding;
  if (!SUPPORTED.has(process.platform)) throw new UnsupportedPlatformError();
  const root = join(__dirname, '..');
  try {
    binding = require(buildFile(root)) as Binding;
  } catch (error) {
    checkCanOpen(root);
    // Only "nothing found" gets advice: a build that exists but fails to
    // load (a missing symbol, a wrong architecture) says more as it is.
    if (!(error instanceof Error && error.message.startsWith('No native build was found'))) throw error;
    throw noBuildError(process.env['LOOP_LOCK_PREBUILD'] || root, error);
  }
  return binding;
}

/**
 * The build node-gyp-build chooses (a build from source first, then the
 * prebuild for this platform), corrected on a musl Linux it does not
 * recognise (see libc.ts).
 */
function buildFile(root: string): string {
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  const chosen = nodeGypBuild.resolve(root);
  if (process.platform !== 'linux') return chosen;
  const fitting = fitLibc(chosen, libc());
  if (fitting === null) throw new Error(`No native build was found for musl: ${chosen} needs glibc`);
  return fitting;
}

/**
 * Out of descriptors, every step of loading fails its own way: require()
 * with EMFILE, node-gyp-build with "No native build was found" in
 * directories it could not list, dlopen() with a message. Whether a file
 * can be opened at all tells those apart from a real load failure.
 */
function checkCanOpen(dir: string): void {
  try {
    closeSync(openSync(dir, 'r'));
  } catch (error) {
    throw toLockError(error, dir);
  }
}

/**
 * Most installs never compile: npm skips the install scripts of dependencies
 * nobody approved, and many install with --ignore-scripts, so the prebuild
 * is what runs. Where none fits, say what this system is, where node-gyp-build
 * looked (it honours LOOP_LOCK_PREBUILD, hence `dir`) and how to build one.
 */
function noBuildError(dir: string, cause: Error): LockError {
  const tuple = `${process.platform}-${process.arch}`;
  const tried = [
    join(dir, 'build', 'Release'),
    join(dir, 'build', 'Debug'),
    join(dir, 'prebuilds', tuple),
    join(dirname(process.execPath), 'prebuilds', tuple),
  ];
  const shipped = listPrebuilds(join(dir, 'prebuilds'));
  const system =
    `${tuple}${libcOf()}, Node.js ${process.versions.node} ` +
    `(ABI ${process.versions.modules}, N-API ${process.versions.napi})`;
  return new LockError(
    `loop-lock has no native build for ${system}.\n` +
      `Looked in:\n${tried.map((path) => `  ${path}\n`).join('')}` +
      `Prebuilt: ${shipped.length === 0 ? 'none' : shipped.join(', ')}.\n` +
      'Build it from source (needs Python 3, make and a C++17 compiler): if your package manager skipped ' +
      "loop-lock's install script, allow it (npm 11: `npm install-scripts approve loop-lock`), then run " +
      '`npm rebuild loop-lock`.',
    { code: 'ENOBUILD', cause },
  );
}

/** The prebuilds shipped, as "<platform>-<arch>/<file>.node". */
function listPrebuilds(dir: string): string[] {
  return entries(dir).flatMap((tuple) =>
    entries(join(dir, tuple))
      .filter((file) => file.endsWith('.node'))
      .map((file) => `${tuple}/${file}`),
  );
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// A prebuild tagged glibc does not fit a musl system, so name the libc.
function libcOf(): string {
  return process.platform === 'linux' ? ` (${libc()})` : '';
}
