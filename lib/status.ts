import { toLockError } from './errors.js';
import { checkFilesystem, filesystemCleared } from './filesystem.js';
import { currentHolder, holderOfRecord, openExisting, readRecord, readRecordOrNull } from './lock-file.js';
import type { LockMetadata } from './metadata.js';
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
 * `status()`: probes as `isLocked` does, and when the lock is held reads
 * the record and the holder's mark in the same call (`binding.inspect`),
 * on the inode found held.
 */
export function statusOf({ lockPath, policy }: Resolved): LockStatus {
  const binding = native();
  if (!filesystemCleared(lockPath, policy) && !checkExistingFilesystem(binding, lockPath, policy)) {
    return { locked: false, holder: null };
  }
  let found: Handle | 0 | string;
  try {
    found = binding.inspect(lockPath);
  } catch (error) {
    throw toLockError(error, lockPath);
  }
  if (found === 0) return { locked: false, holder: null };
  const holder = typeof found === 'string' ? holderOfRecord(binding, found, lockPath) : holderThrough(binding, found, lockPath);
  return { locked: true, holder };
}

/** `currentHolder` through a handle found held, which it then closes. */
export function holderThrough(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  try {
    return currentHolder(binding, handle, lockPath);
  } catch (error) {
    throw toLockError(error, lockPath);
  } finally {
    binding.close(handle);
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
