import { basename, dirname } from 'node:path';
import { AlreadyLockedError, LockError, toLockError } from './errors.js';
import { checkFilesystem } from './filesystem.js';
import { heldByThisThread, Holding, type LockGuard } from './guard.js';
import { currentHolder, openForLock } from './lock-file.js';
import { encodePrompt, type LockMetadata } from './metadata.js';
import { type Binding, type Handle, native, WaitOutcome } from './native.js';
import type { Resolved } from './options.js';

// How often the lock file may turn out to be replaced between open() and
// flock() before acquiring gives up: a file that is swapped this often is
// being fought over, and looping forever would hide it.
export const MAX_REOPENS = 64;

// How long tryAcquire retries while only probes stand in its way. A probe
// holds its shared lock for a microsecond or two, but a prober preempted in
// that window holds it for the rest of its time slice, a few milliseconds.
const PROBE_PATIENCE_MS = 10;

/**
 * Finishes an acquisition once `handle` is locked: checks that the locked
 * inode is still the one at the path (the file may have been deleted or
 * replaced between open() and flock(), and a lock on an unlinked inode
 * excludes nobody), then writes the metadata in place, all in one call
 * (`binding.claim`). Returns `null`, with the handle closed, when the file
 * is stale and the caller must reopen.
 */
export function claim(
  binding: Binding,
  handle: Handle,
  lockPath: string,
  prompt: string,
  promptJson: string,
): LockGuard | null {
  const started = binding.claim(handle, process.pid, promptJson);
  if (started === null) {
    binding.close(handle);
    return null;
  }
  return Holding.held(handle, lockPath, process.pid, prompt, started);
}

export function replacedTooOften(lockPath: string): LockError {
  return new LockError(`EAGAIN: lock file '${lockPath}' was replaced ${MAX_REOPENS} times while being locked`, {
    code: 'EAGAIN',
    path: lockPath,
  });
}

/** What a lock step found. */
const enum Found {
  /** The handle holds the lock. */
  Locked,
  /** Another holder has it. */
  Held,
  /** The path no longer names the handle's file (a wait saw it moved, removed or replaced): reopen. */
  Moved,
}

/** Locks an open handle: how `tryAcquire` and `acquireBlocking` differ. */
type LockStep = (binding: Binding, handle: Handle, lockPath: string) => Found;

/** Opens, locks with `lock` and claims, reopening while the file turns out stale. */
function acquireWith({ lockPath, policy }: Resolved, prompt: unknown, lock: LockStep): LockGuard {
  const promptJson = encodePrompt(prompt, lockPath);
  const binding = native();
  // Only reopens right after locking count: a wait that saw its file move
  // took a filesystem event to get there, and goes on waiting however often
  // a peer replaces the file (as acquire() does).
  for (let reopens = 0; reopens <= MAX_REOPENS; ) {
    const handle = openForLock(binding, lockPath);
    let holder: LockMetadata | null;
    try {
      checkFilesystem(binding, handle, lockPath, policy);
      const found = lock(binding, handle, lockPath);
      if (found === Found.Locked) {
        const guard = claim(binding, handle, lockPath, prompt as string, promptJson);
        if (guard !== null) return guard;
        reopens++;
        continue;
      }
      if (found === Found.Moved) {
        binding.close(handle);
        continue;
      }
      holder = currentHolder(binding, handle, lockPath);
    } catch (error) {
      binding.close(handle);
      throw toLockError(error, lockPath);
    }
    // Thrown here rather than by the step: one throw, not a throw caught
    // and rethrown, on the path a busy contender takes most.
    binding.close(handle);
    throw new AlreadyLockedError(lockPath, holder);
  }
  throw replacedTooOften(lockPath);
}

const lockNow: LockStep = (binding, handle) => {
  if (binding.tryLock(handle, false)) return Found.Locked;
  // Refused by a holder, or only by probes (isLocked, status), which hold a
  // shared lock for a microsecond or two. A shared lock we can take proves
  // there is no holder: then drop it and try again (flock() would convert
  // it, but not atomically, and Windows does not convert at all), until no
  // shared lock is to be had.
  const deadline = performance.now() + PROBE_PATIENCE_MS;
  while (binding.tryLock(handle, true)) {
    binding.unlock(handle);
    if (binding.tryLock(handle, false)) return Found.Locked;
    if (performance.now() > deadline) break;
  }
  return Found.Held;
};

const lockWaiting: LockStep = (binding, handle, lockPath) => {
  if (heldByThisThread(binding.fileKey(handle))) {
    throw new LockError(
      `EDEADLK: this thread already holds lock '${lockPath}'; acquireBlocking() would wait for itself forever`,
      { code: 'EDEADLK', path: lockPath },
    );
  }
  const outcome = binding.lockBlocking(handle, dirname(lockPath), basename(lockPath), false);
  if (outcome === WaitOutcome.Locked) return Found.Locked;
  if (outcome === WaitOutcome.Stale) return Found.Moved;
  // This thread is being torn down; nothing will see this.
  throw new LockError(`EINTR: the wait for lock '${lockPath}' ended with its thread`, {
    code: 'EINTR',
    path: lockPath,
  });
};

/** `tryAcquire()`: takes the lock if it is free, else throws `AlreadyLockedError`. */
export function acquireNow(resolved: Resolved, prompt: unknown): LockGuard {
  return acquireWith(resolved, prompt, lockNow);
}

/** `acquireBlocking()`: takes the lock, blocking the thread until it is free. */
export function acquireWaiting(resolved: Resolved, prompt: unknown): LockGuard {
  return acquireWith(resolved, prompt, lockWaiting);
}
