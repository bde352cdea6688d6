#include "lock_file.h"

#include <uv.h>

#include <chrono>
#include <utility>

#include "lock_owner.h"
#include "record.h"

namespace loop_lock {

Status LockFile::Identify(Identity* identity, long long* size) const {
  return CheckIdentity(handle_, path_.c_str(), id_, identity, size);
}

Status LockFile::Claim(uint32_t pid, const std::string& prompt_json, bool mark, bool* claimed,
                       int64_t* started_ms) {
  *started_ms = NowMs();
  return ClaimAt(pid, prompt_json, *started_ms, mark, claimed);
}

Status LockFile::ClaimAt(uint32_t pid, const std::string& prompt_json, int64_t started_ms,
                         bool mark, bool* claimed) {
  Identity identity = Identity::kSame;
  long long size = -1;
  Status status = Identify(&identity, &size);
  *claimed = status.ok() && identity == Identity::kSame;
  // Linked since the open refused links: writing now would overwrite the
  // other name's file, and reopening would only be refused.
  if (status.ok() && identity == Identity::kLinked) return Status{-UV_EMLINK, "lstat"};
  if (!*claimed) return status;
  const std::string record = EncodeRecord(pid, started_ms, prompt_json);
  status = WriteRecord(handle_, record.data(), record.size(), size);
  if (!status.ok()) return status;
  // After the write: until the new mark is made, the record is checked as
  // an unmarked one, never against the mark of the pid it replaced.
  if (marked_) UnmarkHolder(handle_);
  marked_ = mark && MarkHolder(handle_, pid);
  return status;
}

Status LockFile::Attempt(LockRequest* request, Found* found) {
  bool locked = false;
  Status status = request->shared ? TryLock(handle_, true, &locked)
                                  : LockExclusive(request->patience_ms, &locked);
  if (!status.ok()) return status;
  if (!locked) return Refused(request->check_path, found);
  MarkLocked();
  *found = Found::kLocked;
  if (request->prompt_json == nullptr) return status;
  if (request->started_ms < 0) request->started_ms = NowMs();
  bool claimed = false;
  status = ClaimAt(request->pid, *request->prompt_json, request->started_ms, true, &claimed);
  if (!claimed) *found = Found::kStale;
  return status;
}

Status LockFile::LockExclusive(int64_t patience_ms, bool* locked) {
  Status status = TryLock(handle_, false, locked);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(patience_ms);
  while (status.ok() && !*locked && patience_ms > 0) {
    // Refused by a holder, or only by probes (isLocked, status), which hold
    // a shared lock for a microsecond or two. A shared lock we can take
    // proves there is no holder: drop it and try again (flock() would
    // convert it, but not atomically, and Windows does not convert at all),
    // so this loop ends holding nothing unless it holds the lock.
    bool unheld = false;
    status = TryLock(handle_, true, &unheld);
    if (!status.ok() || !unheld) break;
    Unlock(handle_);
    status = TryLock(handle_, false, locked);
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  return status;
}

Status LockFile::Refused(bool check_path, Found* found) const {
  *found = Found::kHeld;
  if (!check_path) return Status{};
  Identity identity = Identity::kSame;
  long long size = -1;
  const Status status = Identify(&identity, &size);
  // Moved, deleted or replaced (or linked): waiting on it would wait for a
  // lock that nobody who opens the path will ever take.
  if (status.ok() && identity != Identity::kSame) *found = Found::kStale;
  return status;
}

void LockFile::Close() {
  if (!open_) return;
  if (marked_) UnmarkHolder(handle_);
  Release(handle_, locked_);
  open_ = false;
}

}  // namespace loop_lock
