// One open lock file as the binding hands it to JavaScript: the descriptor,
// the path it was opened at, and the environment whose teardown must close it.
#ifndef LOOP_LOCK_LOCK_FILE_H_
#define LOOP_LOCK_LOCK_FILE_H_

#include <node_api.h>

#include <string>

namespace loop_lock {

class LockFile {
 public:
  LockFile(napi_env env, int fd, std::string path);
  ~LockFile();
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool closed() const { return fd_ < 0; }

  // Set once a flock() through this descriptor succeeded: only then does
  // closing need an unlock first.
  void MarkLocked() { locked_ = true; }

  // The file's size as this descriptor last saw or left it, -1 if unknown.
  long long size() const { return size_; }
  void set_size(long long size) { size_ = size; }

  // Unlocks and closes; later calls do nothing.
  void Close();

 private:
  // Runs when the environment (the main thread or a worker) is torn down,
  // so a worker that exits without releasing frees its locks at once rather
  // than whenever the process ends.
  static void OnEnvironmentTeardown(void* self);

  napi_env env_;
  int fd_;
  std::string path_;
  bool locked_ = false;
  long long size_ = -1;
};

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_FILE_H_
