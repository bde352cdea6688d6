// One open lock file and the steps of taking its lock (Node-free: the
// binding's table of them is file_table.h).
#ifndef LOOP_LOCK_LOCK_FILE_H_
#define LOOP_LOCK_LOCK_FILE_H_

#include <cstdint>
#include <string>

#include "lock_core.h"

namespace loop_lock {

// What one attempt at the lock found (LockFile::Attempt). Its numbers are
// what JavaScript gets from a wait (WaitOutcome in lib/native.ts); attempt()
// tells it by the sign of the handle it returns.
enum class Found : uint32_t {
  kLocked = 0,  // locked through this file (and, when it claims, record written and marked)
  kStale = 1,   // the file at the path is no longer this one: reopen
  kHeld = 2,    // another holder has it
};

// What one attempt asks for.
struct LockRequest {
  // flock(LOCK_SH) rather than LOCK_EX: a FileLock's shared lock.
  bool shared = false;
  // The record to write once locked, for `pid`; nullptr takes the lock
  // without one (a FileLock: no record, no mark).
  const std::string* prompt_json = nullptr;
  uint32_t pid = 0;
  // The record's stamp (ms since the epoch); negative: the moment the lock
  // was taken, set here by the attempt that claims.
  int64_t started_ms = -1;
  // How long to try again while only probes refuse an exclusive lock.
  int64_t patience_ms = 0;
  // When refused: whether to check that the path still names this file
  // (kStale if not). A wait woken by the file's close skips it: a close
  // cannot move the file.
  bool check_path = false;
};

class LockFile {
 public:
  LockFile(FileHandle handle, std::string path, FileId id)
      : handle_(handle), path_(std::move(path)), id_(id) {}
  ~LockFile() { Close(); }
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

  FileHandle handle() const { return handle_; }
  const std::string& path() const { return path_; }
  const FileId& id() const { return id_; }

  // Set once a lock through this handle succeeded: only then does closing
  // need an unlock first.
  void MarkLocked() { locked_ = true; }

  // Whether the file at path() is still the one this descriptor opened.
  Status Identify(Identity* identity, long long* size) const;

  // Makes a lock just taken the holder's: checks that the file at path()
  // is still this one and writes the record, stamped now (*started_ms).
  // *claimed is false, and nothing written, when the file was removed or
  // replaced since it was opened: then the lock guards nothing. A file that
  // gained another hard link fails with EMLINK, nothing written.
  //
  // Then marks the record's pid as the holder (MarkHolder), unless `mark` is
  // false, dropping any mark made before: a claim that names a process
  // holding through an inherited descriptor (`loop-lock run`'s command)
  // must not mark, since a mark lives as long as the open file description,
  // which the process it names may not.
  Status Claim(uint32_t pid, const std::string& prompt_json, bool mark, bool* claimed,
               int64_t* started_ms);
  // The same, stamped started_ms (ms since the epoch).
  Status ClaimAt(uint32_t pid, const std::string& prompt_json, int64_t started_ms, bool mark,
                 bool* claimed);

  // One attempt at the lock, the step every way of acquiring takes (try,
  // the blocking wait, the event-loop wait, the poll): flock(LOCK_NB), then,
  // when the request carries a record, ClaimAt its stamp. While only probes
  // (isLocked, status: shared locks held for a microsecond or two, or for
  // a time slice when their process is preempted) refuse an exclusive lock,
  // tries again for up to patience_ms: a shared lock that can be taken
  // proves there is no holder. A wait passes 0: its next wake-up is its
  // retry. A lock that turns out to guard a stale file is kept (closing
  // releases it): the caller reopens. Fails as ClaimAt does, the lock kept
  // until Close.
  Status Attempt(LockRequest* request, Found* found);

  // Unlocks (if locked, first removing the holder's mark) and closes;
  // later calls do nothing.
  void Close();

 private:
  FileHandle handle_;
  bool open_ = true;
  std::string path_;
  FileId id_;
  bool locked_ = false;
  bool marked_ = false;  // see MarkHolder

  // flock(LOCK_EX|LOCK_NB), trying again for up to patience_ms while only
  // probes refuse it.
  Status LockExclusive(int64_t patience_ms, bool* locked);
  // A refused attempt: kHeld, or kStale when check_path finds the file gone.
  Status Refused(bool check_path, Found* found) const;
};

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_FILE_H_
