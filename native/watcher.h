// Change notification for LoopLock.watch(): the event loop watches the lock
// file's directory, and every directory above it, through the environment's
// notifier (notifier.h: inotify on Linux), and tells JavaScript what kind of
// thing happened, so that it probes only when something did. Nothing runs
// while nothing changes: no timer, no thread.
//
// The notifier is shared with the environment's waits; directories watched
// by several watches share one kernel watch. Its kernel instance closes a
// second after the last watch or wait ends (closing it waits for an RCU
// grace period, about 8 ms on the event loop).
//
// A watch is a list of directories from the lock file's (or the deepest one
// that exists on its path) up to the root, each with a role (WatchRole) and
// the name in it that matters. Its callback gets the union of WatchEvent bits
// seen since the last call: one call per batch of events read, however many
// events the batch held.
#ifndef LOOP_LOCK_WATCHER_H_
#define LOOP_LOCK_WATCHER_H_

#include <napi.h>

#include "notifier.h"

namespace loop_lock {

// What a directory of a watch is watched for.
enum class WatchRole {
  kAncestor = 0,  // only its own removal or move
  kParent = 1,    // also the next name on the path appearing or going away
  kLockDir = 2,   // also the lock file: opened, written, closed, created, removed
};

// Bits passed to a watch's callback.
enum WatchEvent {
  kLockFileWritten = 1,  // the lock file was written (a holder's record)
  kLockFileClosed = 2,   // ... closed (a holder may be about to unlock)
  kLockFileOpened = 4,   // ... opened (a holder may be about to lock)
  kLockFileNamed = 8,    // a file was created, removed or renamed at its name
  kPathChanged = 16,     // a directory of the path was moved, removed or created
  kWriterClosed = 32,    // ... closed by a descriptor open for writing: a holder's
                         // (readers open it read-only), which may die holding
};

// Adds watchPaths(directories, roles, names, callback[, persistent]) -> id,
// or null where there is no notifier (a watch made with persistent false does
// not keep the event loop alive), failing as every call does (an Error with errno and
// syscall: ENOENT, ENOTDIR when a directory went away since it was listed;
// anything else when the notifier cannot be used); and unwatchPaths(id).
// Unknown ids are ignored. `notifier` (nullptr where there is none) is
// shared with the waits.
void InitWatcher(Napi::Env env, Napi::Object exports, Notifier* notifier);

}  // namespace loop_lock

#endif  // LOOP_LOCK_WATCHER_H_
