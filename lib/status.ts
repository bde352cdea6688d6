import { LockParseError, toLockError } from './errors.js';
import { checkFilesystem, filesystemCleared } from './filesystem.js';
import { currentHolder, openExisting, readRecord, readRecordOrNull } from './lock-file.js';
import { type LockMetadata, parseRecord } from './metadata.js';
import { type Binding, type Handle, native } from './native.js';
import type { NetworkFilesystemPolicy, Resolved } from './options.js';

/** What `LoopLock.status()` reports. */
export interface LockStatus {
  /** Whether some open file description holds the lock exclusively. */
  locked: boolean;
  /** The holder's metadata while the lock is held and the record in the file is the holder's, else `null`. */
  holder: LockMetadata | null;
}

/** `isLocked()`: one shared `flock` probe, without a handle of its own. */
export function isLocked({ lockPath, policy }: Resolved): boolean {
  const binding = native();
  if (!filesystemCleared(lockPath, policy) && !checkExistingFilesystem(binding, lockPath, policy)) return false;
  try {
    return binding.probe(lockPath);
  } catch (error) {
    throw toLockError(error, lockPath);
  }
}

/**
 * The lock's state through an open handle, by the one rule of who holds it
 * (`currentHolder`): shared by `status()` and `watch()`. When free, the
 * handle is left holding a shared lock, for the caller to close or unlock.
 */
export function statusThrough(binding: Binding, handle: Handle, lockPath: string): LockStatus {
  if (binding.tryLock(handle, true)) return { locked: false, holder: null };
  return { locked: true, holder: currentHolder(binding, handle, lockPath) };
}

/**
 * `status()`: probes as `isLocked` does and, when held, reads the record
 * through the same descriptor, in one call (`binding.inspect`); the record
 * names the holder by the rule of `currentHolder`.
 */
export function statusOf({ lockPath, policy }: Resolved): LockStatus {
  const binding = native();
  if (!filesystemCleared(lockPath, policy) && !checkExistingFilesystem(binding, lockPath, policy)) {
    return { locked: false, holder: null };
  }
  let held: ReturnType<Binding['inspect']>;
  try {
    held = binding.inspect(lockPath);
  } catch (error) {
    throw toLockError(error, lockPath);
  }
  if (held === false) return { locked: false, holder: null };
  return { locked: true, holder: holderNamedBy(binding, held[0], held[1], lockPath) };
}

/**
 * The holder that `record`, the text read through `handle` on finding the
 * lock held, names, if its pid holds the lock (the rule of `currentHolder`,
 * for a record read in the same call that found the lock held); closes the
 * handle.
 */
export function holderNamedBy(
  binding: Binding,
  handle: Handle,
  record: string | null,
  lockPath: string,
): LockMetadata | null {
  try {
    const holder = record === null ? null : parseRecordOrNull(record, lockPath);
    return holder !== null && binding.heldBy(handle, holder.pid) ? holder : null;
  } catch (error) {
    throw toLockError(error, lockPath);
  } finally {
    binding.close(handle);
  }
}

function parseRecordOrNull(text: string, lockPath: string): LockMetadata | null {
  try {
    return parseRecord(text, lockPath);
  } catch (error) {
    if (error instanceof LockParseError) return null;
    throw error;
  }
}

/** `readExisting()`: the record in the file, without locking. */
export function readExisting({ lockPath }: Resolved, strict: boolean): LockMetadata | null {
  const binding = native();
  const handle = openExisting(binding, lockPath);
  if (handle === null) return null;
  try {
    return strict ? readRecord(binding, handle, lockPath) : readRecordOrNull(binding, handle, lockPath);
  } finally {
    binding.close(handle);
  }
}

/**
 * Applies the filesystem policy to the lock file through a handle of its
 * own, the first time a probe meets it; false when there is no lock file.
 */
function checkExistingFilesystem(binding: Binding, lockPath: string, policy: NetworkFilesystemPolicy): boolean {
  const handle = openExisting(binding, lockPath);
  if (handle === null) return false;
  try {
    checkFilesystem(binding, handle, lockPath, policy);
  } finally {
    binding.close(handle);
  }
  return true;
}
