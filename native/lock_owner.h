// Who took a lock, as the kernel knows it. A lock file's record says who
// wrote it last, which is not always who holds the lock now: a new holder
// has locked but not yet written, a foreign holder (flock(1)) writes
// nothing, a holder died and left its record. Readers check the record's
// pid here before they name it.
#ifndef LOOP_LOCK_LOCK_OWNER_H_
#define LOOP_LOCK_LOCK_OWNER_H_

#include <cstdint>

#include "lock_core.h"

namespace loop_lock {

// Marks the record just written through `fd` (locked, writable) as the
// holder's: an OFD byte-range lock far past any record, at an offset that
// names the holder's pid and pid namespace, held until UnmarkHolder. A
// reader that finds it knows, with one fcntl(), that the process the record
// names holds the lock now. Linux only (OFD locks); false when not marked
// (another platform, or a conflicting POSIX lock on the whole file), which
// leaves readers the slower checks below.
bool MarkHolder(FileHandle fd, int64_t pid);

// Removes the mark, before the flock() lock is released: a mark that
// outlived its lock would name its process as the next holder's.
void UnmarkHolder(FileHandle fd);

// Whether process `pid` (as this process numbers pids) holds the exclusive
// flock() lock on the inode `id`, open as `fd`: its mark is there (see
// MarkHolder), or it is alive and, on Linux, the kernel says so.
//
// On Linux the kernel lists every lock in /proc/locks with the pid that
// took it and its device and inode; a pid outside the reader's pid
// namespace is listed as 0, so it never matches. Where /proc/locks cannot
// be read, or its pids are another namespace's (/proc mounted from another
// pid namespace), and on macOS, only a dead pid can be ruled out: the
// answer is then whether `pid` names a live process. Pids below 1 address
// process groups and name no holder.
bool HoldsLock(FileHandle fd, const FileId& id, int64_t pid);

// Opens what HoldsLock reads (/proc/locks), once per process. Called when
// the addon loads, so that the descriptor it keeps is there from the first
// call on rather than appearing at the first contended one, where a count
// of open descriptors would take it for a leak.
void PrepareHoldsLock();

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_OWNER_H_
