import { basename, dirname } from 'node:path';
import { AlreadyLockedError, isErrno, LockError, toLockError } from './errors.js';
import { checkFilesystem, filesystemCleared } from './filesystem.js';
import { heldByThisThread, Holding, type LockGuard } from './guard.js';
import { holderOfRecord, openForLock } from './lock-file.js';
import { encodePrompt } from './metadata.js';
import { type Binding, type Handle, native, WaitOutcome } from './native.js';
import type { Resolved } from './options.js';
import { holderThrough } from './status.js';

// How often the lock file may turn out to be replaced between open() and
// flock() before acquiring gives up: a file that is swapped this often is
// being fought over, and looping forever would hide it.
export const MAX_REOPENS = 64;

export function replacedTooOften(lockPath: string): LockError {
  return new LockError(`EAGAIN: lock file '${lockPath}' was replaced ${MAX_REOPENS} times while being locked`, {
    code: 'EAGAIN',
    path: lockPath,
  });
}

/**
 * `tryAcquire()`: one native attempt per try (open, lock, claim), reopening
 * while the file turns out stale; when refused, who holds it, from the
 * record the attempt read through its descriptor.
 */
export function acquireNow({ lockPath, policy }: Resolved, prompt: unknown): LockGuard {
  const promptJson = encodePrompt(prompt, lockPath);
  const binding = native();
  if (!filesystemCleared(lockPath, policy)) checkFilesystemOfLock(binding, lockPath, policy);
  for (let reopens = 0; reopens <= MAX_REOPENS; reopens++) {
    const started = Date.now();
    const found = attemptOrCreate(binding, lockPath, promptJson, started);
    if (typeof found === 'string') throw new AlreadyLockedError(lockPath, holderOfRecord(binding, found, lockPath));
    if (found > 0) return Holding.held(found as Handle, lockPath, process.pid, prompt as string, started);
    if (found < 0) throw new AlreadyLockedError(lockPath, holderThrough(binding, -found as Handle, lockPath));
  }
  throw replacedTooOften(lockPath);
}

/** `binding.attempt`, creating the lock file's directories when they are missing. */
function attemptOrCreate(binding: Binding, lockPath: string, promptJson: string, started: number): number | string {
  try {
    return binding.attempt(lockPath, process.pid, promptJson, started);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw toLockError(error, lockPath);
  }
  try {
    binding.close(openForLock(binding, lockPath));
    return binding.attempt(lockPath, process.pid, promptJson, started);
  } catch (error) {
    throw toLockError(error, lockPath);
  }
}

/** Applies the filesystem policy through a handle of its own, before the first attempt locks anything. */
function checkFilesystemOfLock(binding: Binding, lockPath: string, policy: Resolved['policy']): void {
  const handle = openForLock(binding, lockPath);
  try {
    checkFilesystem(binding, handle, lockPath, policy);
  } finally {
    binding.close(handle);
  }
}

/**
 * `acquireBlocking()`: opens, then waits for the lock and claims it in one
 * call, reopening while the file turns out stale. Stale outcomes are not
 * counted against MAX_REOPENS, as acquire()'s are not: each took a
 * filesystem event, and the wait goes on however often a peer replaces
 * the file.
 */
export function acquireWaiting({ lockPath, policy }: Resolved, prompt: unknown): LockGuard {
  const promptJson = encodePrompt(prompt, lockPath);
  const binding = native();
  for (;;) {
    const handle = openForLock(binding, lockPath);
    let started: number;
    try {
      checkFilesystem(binding, handle, lockPath, policy);
      started = lockWaiting(binding, handle, lockPath, promptJson);
    } catch (error) {
      binding.close(handle);
      throw toLockError(error, lockPath);
    }
    if (started !== WaitOutcome.Stale) return Holding.held(handle, lockPath, process.pid, prompt as string, started);
    binding.close(handle);
  }
}

/** Waits in this thread until `handle` is locked and claimed (the record's stamp), or its file is stale. */
function lockWaiting(binding: Binding, handle: Handle, lockPath: string, promptJson: string): number {
  if (heldByThisThread(binding.fileKey(handle))) {
    throw new LockError(
      `EDEADLK: this thread already holds lock '${lockPath}'; acquireBlocking() would wait for itself forever`,
      { code: 'EDEADLK', path: lockPath },
    );
  }
  const outcome = binding.lockBlocking(handle, dirname(lockPath), basename(lockPath), false, process.pid, promptJson);
  if (outcome !== undefined) return outcome;
  // This thread is being torn down; nothing will see this.
  throw new LockError(`EINTR: the wait for lock '${lockPath}' ended with its thread`, {
    code: 'EINTR',
    path: lockPath,
  });
}
