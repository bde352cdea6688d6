// What `loop-lock run` needs of the process around the lock: that the
// command it starts cannot outlive it and go on running without the lock.
#ifndef LOOP_LOCK_PROCESS_H_
#define LOOP_LOCK_PROCESS_H_

#include "lock_core.h"

namespace loop_lock {

// Ends every process this one starts from now on (and their descendants)
// when this process ends, however it ends, killed included. Windows: this
// process joins a new Job Object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
// whose only handle closes when the process dies; children join the job as
// they are created, so none escapes between its start and the call. POSIX
// has nothing to match it (ENOTSUP): `run` forwards signals there instead.
Status KillChildrenOnExit();

// The descriptor behind `file`, for `loop-lock run` to hand its command, so
// that the command's whole process tree holds the lock (the one descriptor
// a child ever inherits, as flock(1) hands its own). POSIX: the fd, which a
// child receives by dup2() (dropping close-on-exec there only). Windows:
// ENOTSUP; a handle would need a CRT descriptor to pass, and `run`'s Job
// Object already ends the command's tree with `run`.
Status InheritableDescriptor(FileHandle file, int* descriptor);

}  // namespace loop_lock

#endif  // LOOP_LOCK_PROCESS_H_
