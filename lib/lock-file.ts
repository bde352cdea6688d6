import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isErrno, LockParseError, toLockError } from './errors.js';
import { type LockMetadata, MAX_METADATA_BYTES, parseRecord } from './metadata.js';
import { type Binding, FoundSlot, type Handle } from './native.js';

/**
 * Creates `dir` and any missing parents. Not `mkdirSync`'s recursive mode:
 * when mkdir(2) fails with EROFS (or any errno it does not expect), Node 20
 * reports the ENOENT of its follow-up stat() instead of the real error.
 */
function makeDirectories(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
    makeDirectories(dirname(dir));
    try {
      mkdirSync(dir);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== 'EEXIST') throw again;
    }
  }
}

/** Opens (creating it and its directories) the lock file for locking. */
export function openForLock(binding: Binding, lockPath: string): Handle {
  try {
    return binding.open(lockPath, true);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw toLockError(error, lockPath);
  }
  try {
    makeDirectories(dirname(lockPath));
    return binding.open(lockPath, true);
  } catch (error) {
    throw toLockError(error, lockPath);
  }
}

/** Opens the lock file for reading; `null` when it does not exist. */
export function openExisting(binding: Binding, lockPath: string): Handle | null {
  try {
    return binding.open(lockPath, false);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw toLockError(error, lockPath);
  }
}

// Why a file is no record, by the errno `Binding.read` fails with for it
// (by name: see isErrno).
const NOT_A_RECORD: ReadonlyArray<readonly [string, string]> = [
  ['EFBIG', `the file is larger than ${MAX_METADATA_BYTES} bytes`],
  ['EILSEQ', 'the file is not UTF-8 text'],
];

/**
 * Reads the record in the file open as `handle`: the one decoder of what
 * `Binding.read` returns. `null` for an empty file; `LockParseError` for
 * anything but a complete record; any other failure as a `LockError`.
 */
export function readRecord(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  let text: string;
  try {
    text = binding.read(handle, MAX_METADATA_BYTES);
  } catch (error) {
    const reason = NOT_A_RECORD.find(([code]) => isErrno(error, code));
    if (reason !== undefined) throw new LockParseError(lockPath, reason[1]);
    throw toLockError(error, lockPath);
  }
  return parseRecord(text, lockPath);
}

/** The record, or `null` for anything that is not a complete one, as the reference's `read_existing` has it. */
export function readRecordOrNull(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  try {
    return readRecord(binding, handle, lockPath);
  } catch (error) {
    if (error instanceof LockParseError) return null;
    throw error;
  }
}

/** `parseRecord`, with `null` for anything that is not a complete record, as `readRecordOrNull` has it. */
function parseRecordOrNull(text: string, lockPath: string): LockMetadata | null {
  try {
    return parseRecord(text, lockPath);
  } catch (error) {
    if (error instanceof LockParseError) return null;
    throw error;
  }
}

/**
 * `currentHolder` for a record that `attempt` or `inspect` read from a file
 * found held, in the same call that found it (see `Binding.found`): a mark
 * on the file names the holder's pid, so the record is the holder's when
 * its pid is that one; without a mark, `heldBy` through the handle the call
 * kept open, which closes it too.
 */
export function holderOfRecord(binding: Binding, text: string, lockPath: string): LockMetadata | null {
  const found = binding.found as Float64Array;
  const handle = found[FoundSlot.Handle] as Handle | 0;
  const markedPid = found[FoundSlot.MarkedPid];
  let open = handle !== 0;
  try {
    const holder = parseRecordOrNull(text, lockPath);
    if (holder === null) return null;
    // Closed: the file carried a mark, which names the holder.
    if (handle === 0) return holder.pid === markedPid ? holder : null;
    const held = binding.heldBy(handle, holder.pid, holder.started.getTime(), markedPid !== 0, true);
    open = false;
    return held ? holder : null;
  } catch (error) {
    throw toLockError(error, lockPath);
  } finally {
    if (open) binding.close(handle as Handle);
  }
}

/**
 * The metadata of whoever holds the lock that `handle` failed to take, or
 * `null` when the record is not theirs for sure: not (yet) a complete
 * record, or one whose pid does not hold the lock. A new holder has locked
 * but not yet written over the last holder's record; a foreign holder
 * (`flock(1)`) writes none; a holder that died left its record, and its
 * pid may since name another process, which started after the record was
 * written. Callers signal the pid they are given, so it must be the holder's.
 */
export function currentHolder(binding: Binding, handle: Handle, lockPath: string): LockMetadata | null {
  const holder = readRecordOrNull(binding, handle, lockPath);
  return holder !== null && binding.heldBy(handle, holder.pid, holder.started.getTime()) ? holder : null;
}
