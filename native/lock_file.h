// The lock files an environment (the main thread or a worker) has open, as
// the binding hands them to JavaScript: small integer ids into a table, not
// one N-API object each. Node 20 runs N-API finalizers on a later turn of the
// event loop, so an object per acquire would pile up in a synchronous loop;
// a table entry is freed the moment its file is closed. The table closes
// whatever is still open when its environment is torn down, so a worker that
// exits without releasing frees its locks at once.
#ifndef LOOP_LOCK_LOCK_FILE_H_
#define LOOP_LOCK_LOCK_FILE_H_

#include <node_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace loop_lock {

class LockFile {
 public:
  LockFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~LockFile() { Close(); }
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Set once a flock() through this descriptor succeeded: only then does
  // closing need an unlock first.
  void MarkLocked() { locked_ = true; }

  // The file's size as this descriptor last saw or left it, -1 if unknown.
  long long size() const { return size_; }
  void set_size(long long size) { size_ = size; }

  // Unlocks (if locked) and closes; later calls do nothing.
  void Close();

 private:
  int fd_;
  std::string path_;
  bool locked_ = false;
  long long size_ = -1;
};

class FileTable {
 public:
  explicit FileTable(napi_env env);
  ~FileTable();
  FileTable(const FileTable&) = delete;
  FileTable& operator=(const FileTable&) = delete;

  // Takes ownership of an open descriptor; returns its id.
  uint32_t Add(int fd, std::string path);
  // The open file behind id, or nullptr once it is closed.
  LockFile* Find(uint32_t id);
  // Closes and forgets id; unknown ids are ignored.
  void Close(uint32_t id);

 private:
  static void OnEnvironmentTeardown(void* self);

  napi_env env_;
  std::unordered_map<uint32_t, std::unique_ptr<LockFile>> files_;
  uint32_t next_id_ = 1;
};

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_FILE_H_
