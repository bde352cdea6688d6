// What a process's own entries in /proc say about it, for the holder check
// (lock_owner.cc): whether it holds a lock through a descriptor of its own,
// and when it started. Linux only. Each answer reads a few small files of
// that one process: no cost that grows with the locks on the machine, no
// kernel-wide lock (/proc/locks takes the lock table's, see lock_owner.cc).
#ifndef LOOP_LOCK_POSIX_PROC_HOLDER_H_
#define LOOP_LOCK_POSIX_PROC_HOLDER_H_

#ifdef __linux__

#include <cstdint>

#include "../lock_core.h"

namespace loop_lock {

enum class ProcAnswer { kYes, kNo, kUnknown };

// Whether /proc is this process's pid namespace's, so that /proc/<pid>
// names the process that kill(pid) reaches. A /proc mounted from another
// namespace (a container that did not remount it) names other processes
// by the same numbers. Read once.
bool ProcIsOwn();

// Whether process `pid` holds the exclusive flock() lock on the file `id`
// through a descriptor of its own, and started in time to have written a
// record stamped `started_ms` (ms since the epoch; see kStartSlackMs).
//
// Held: one of its /proc/<pid>/fdinfo/<fd> lists a FLOCK WRITE lock on
// that file's device and inode, which the kernel lists there only for the
// open file description that holds it (a stat() through /proc/<pid>/fd/<fd>
// confirms the file where the lock's device is not the file's st_dev). A
// process that inherited the descriptor holds the lock as much as the one
// that took it, and is answered yes; one that closed its copy, no. Started:
// field 22 of /proc/<pid>/stat; a process that started more than
// kStartSlackMs after `started_ms` did not write the record (its pid was
// reused): no.
//
// The descriptor found is remembered (per pid and file) with the start
// time, so that the next answer reads that one fdinfo, checked again each
// time (its number may have been closed, or reused for another file), and
// the start time again only when that fdinfo is another inode than the one
// read then (see RememberedDescriptors in proc_holder.cc). kUnknown where
// the entries cannot be read (no such process, another user's process:
// EACCES; hidepid) or where the kernel lists the lock as a POSIX lock (a
// filesystem that emulates flock(), as /proc/locks would show).
ProcAnswer HoldsAsWriter(int64_t pid, const FileId& id, int64_t started_ms);

}  // namespace loop_lock

#endif  // __linux__

#endif  // LOOP_LOCK_POSIX_PROC_HOLDER_H_
