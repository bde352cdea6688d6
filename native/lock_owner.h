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

// The pid whose mark the lock file open as `fd` carries, read by one
// fcntl() over every pid's mark: what a reader that has just read the
// record checks the record's pid against, in place of HoldsLock. A mark is
// made after its record is written and removed before its lock is
// released, so there is at most one, and it is the holder's. kNoMark when
// there is none (a holder that writes none, another platform); kMarkUnread
// when a lock other than a mark is in the way (an fcntl() user's POSIX
// lock). Either leaves the reader HoldsLock.
constexpr int64_t kNoMark = 0;
constexpr int64_t kMarkUnread = -1;
int64_t MarkedPid(FileHandle fd);

// A record is written after its process starts: a process that started
// more than this after a record's `started` did not write it, and its pid
// was reused. The slack covers the clock tick that start times are counted
// in (10 ms on Linux) and clock adjustments that small.
constexpr int64_t kStartSlackMs = 2000;

// Whether process `pid` (as this process numbers pids) holds the exclusive
// flock() lock on the inode `id`, open as `fd`, for a record that names it
// stamped `started_ms` (ms since the epoch): its mark is there (see
// MarkHolder), or it is alive and, on Linux, the kernel says so.
//
// On Linux the process's own /proc entries say so: one of its descriptors
// is the file and holds the lock, and it started no later than 2 s after
// `started_ms`, else the pid was reused (see HoldsAsWriter). Where those entries cannot be read (another user's
// process), /proc/locks, which lists every lock with the pid that took it;
// a pid outside the reader's pid namespace is listed as 0 there, so it
// never matches. Where /proc is another pid namespace's, only a dead pid
// can be ruled out: the answer is then whether `pid` names a live process;
// on macOS, a live process that started in time (the kernel's process
// table). Windows: see win32/lock_owner.cc. Pids below 1 address
// process groups and name no holder. `may_be_marked` false skips the
// mark's check, for a reader that MarkedPid just told there is none.
bool HoldsLock(FileHandle fd, const FileId& id, int64_t pid, int64_t started_ms,
               bool may_be_marked = true);

// Opens what HoldsLock falls back to (/proc/locks), once per process.
// Called when the addon loads, so that the descriptor it keeps is there
// from the first call on rather than appearing at the first contended one,
// where a count of open descriptors would take it for a leak.
void PrepareHoldsLock();

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_OWNER_H_
