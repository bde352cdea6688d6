// Waiting for a lock without a thread: the event loop watches the lock
// file's directory through the environment's notifier (notifier.h:
// inotify on Linux) and retries flock(LOCK_NB) when the
// lock file is closed, renamed or deleted; a backoff timer is the safety net
// for holders that unlock without closing, and the only mechanism elsewhere.
// Each tick of it also checks that the path still names the file, since a
// rename of a directory above the watched one sends no event.
//
// One wake-up per handoff: the holder's close() wakes the event loop, which
// takes the lock and writes the record in the same callback. A thread
// blocked in flock() would need a second wake-up to hand the result to the
// loop, and would occupy a thread per waiter; aborting is just forgetting
// the watch.
#ifndef LOOP_LOCK_WAITER_H_
#define LOOP_LOCK_WAITER_H_

#include <napi.h>

#include "file_table.h"
#include "notifier.h"

namespace loop_lock {

// Adds wait(file, directory, name, shared, pid, promptJson, callback) -> id,
// cancelWait(id) and lockBlocking(file, directory, name, shared); file is an
// id in `files`; shared waits for flock(LOCK_SH), else LOCK_EX. The callback
// is called as Node calls back, failure first: (null, 0, the record's time)
// once the lock is taken and claimed (LockFile::Claim), or (null, 0) once
// taken when promptJson is null (no claim: a FileLock); (null, 1) when the
// file was removed or replaced, or (an Error with errno and syscall) when it
// fails. lockBlocking waits the same way in the calling thread and returns
// 0 once locked (not claimed), 1 when the file was removed or replaced, or
// nothing when the thread's environment is being torn down.
// `notifier` (nullptr where there is none) is shared with the watches.
void InitWaiter(Napi::Env env, Napi::Object exports, FileTable* files, Notifier* notifier);

// Adds lockBlocking alone, woken by the backoff poll only, for runtimes
// whose event loop the addon cannot watch (see RunsOnNode in binding.cc).
void InitBlockingWait(Napi::Env env, Napi::Object exports, FileTable* files);

}  // namespace loop_lock

#endif  // LOOP_LOCK_WAITER_H_
