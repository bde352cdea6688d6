// The steps both ways of waiting share: the event-loop wait (waiter.cc) and
// the blocking one (blocking_wait.cc). Each try is one LockFile::Attempt;
// between tries a wait sleeps on the backoff, cut short by the notifier.
#ifndef LOOP_LOCK_WAIT_STEP_H_
#define LOOP_LOCK_WAIT_STEP_H_

#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "file_table.h"
#include "lock_file.h"
#include "notifier.h"

namespace loop_lock {

// Backoff of the safety-net poll, in milliseconds. After any wake-up that
// does not get the lock it restarts at the shortest delay: a holder's close
// is reported a moment before the kernel drops its flock (fsnotify_close
// runs before locks_remove_file), so a quick second try catches that race.
constexpr uint64_t kFirstRetryMs = 1;
constexpr uint64_t kMaxRetryMs = 100;

// What a wait watches its directory for: the lock file closed (a holder's
// release), and the file or the directory created, removed or moved.
constexpr uint32_t kWaitKinds = kEntryClosedWriter | kEntryClosedReader | kEntryNamed;
// What, besides a close, says the file may be elsewhere now.
constexpr uint32_t kMovedKinds = kEntryNamed | kDirectoryGone | kWatchDropped | kChangesLost;

// What woke a wait up, in the order of how much it says.
enum class Wake {
  kTimer,    // the backoff poll
  kClosed,   // someone closed the lock file
  kRenamed,  // the lock file or its directory was created, deleted or renamed
};

// The delay before the next try of a wait that did not get the lock.
inline uint64_t NextDelay(uint64_t delay, Wake wake) {
  return wake == Wake::kTimer ? std::clamp(delay * 2, kFirstRetryMs, kMaxRetryMs) : kFirstRetryMs;
}

// Whether a change concerns a wait on `watch` for `name`: the notifier also
// tells what others asked for (a watch's opens and writes) and about other
// directories.
inline bool Concerns(const Change& change, int watch, const std::string& name) {
  if ((change.kinds & kChangesLost) != 0) return true;
  if ((change.kinds & (kWaitKinds | kMovedKinds)) == 0) return false;
  return change.watch == watch && (change.name.empty() || change.name == name);
}

inline Wake WakeOf(const Change& change) {
  return (change.kinds & kMovedKinds) != 0 ? Wake::kRenamed : Wake::kClosed;
}

// One try of a wait (LockFile::Attempt). When refused it checks that the
// path still names the file, unless the file's close woke it: a close
// cannot move the file; a rename of any directory above it sends no event
// at all, which is why every backoff tick checks. A claim is stamped when
// the lock is taken (request->started_ms).
inline Status TryOnce(LockFile* file, LockRequest* request, Wake wake, Found* found) {
  request->check_path = wake != Wake::kClosed;
  request->started_ms = -1;
  return file->Attempt(request, found);
}

// A watch on a wait's directory, or -1: without a notifier (none here, or
// instances exhausted) waits still work, by the backoff poll alone.
inline int WatchFor(Notifier* notifier, const std::string& directory) {
  int watch = -1;
  if (notifier == nullptr || !notifier->AddWatch(directory, kWaitKinds, &watch).ok()) return -1;
  return watch;
}

inline void UnwatchFor(Notifier* notifier, int watch) {
  if (notifier != nullptr && watch >= 0) notifier->RemoveWatch(watch);
}

// lockBlocking (see waiter.h), waiting in this thread; `notifier` (nullptr:
// none) wakes it early.
Napi::Value LockBlocking(const Napi::CallbackInfo& info, FileTable* files, Notifier* notifier);

}  // namespace loop_lock

#endif  // LOOP_LOCK_WAIT_STEP_H_
