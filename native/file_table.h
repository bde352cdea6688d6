// The lock files an environment (the main thread or a worker) has open, as
// the binding hands them to JavaScript: small integer ids into a table, not
// one N-API object each. Node 20 runs N-API finalizers on a later turn of the
// event loop, so an object per acquire would pile up in a synchronous loop;
// a table entry is freed the moment its file is closed. The table closes
// whatever is still open when its environment is torn down, so a worker that
// exits without releasing frees its locks at once.
#ifndef LOOP_LOCK_FILE_TABLE_H_
#define LOOP_LOCK_FILE_TABLE_H_

#include <node_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "lock_file.h"

namespace loop_lock {

class FileTable {
 public:
  explicit FileTable(napi_env env);
  ~FileTable();
  FileTable(const FileTable&) = delete;
  FileTable& operator=(const FileTable&) = delete;

  // Takes ownership of an open handle; returns its id.
  uint32_t Add(FileHandle handle, std::string path, FileId inode);
  // The open file behind id, or nullptr once it is closed.
  LockFile* Find(uint32_t id);
  // Closes and forgets id; unknown ids are ignored.
  void Close(uint32_t id);

  // Two numbers that a call returning a held file's record leaves for
  // JavaScript (see HeldRecord in binding.cc): [0] the handle kept open for
  // the holder check, 0 when closed; [1] the pid the file's mark names, 0
  // when it has none, -1 when another lock kept it from being read (see
  // MarkedPid). The binding exports a Float64Array over them once,
  // so such a call returns a string, not an object it would have to build.
  // The table keeps the buffer alive for as long as it writes to it.
  double* found() const { return found_; }
  napi_value FoundArray() const;

 private:
  static void OnEnvironmentTeardown(void* self);

  napi_env env_;
  // Until the teardown hook has run: removing a hook that already ran is a
  // no-op in Node but a panic in Deno, whose instance data finalizer (which
  // deletes this table) runs after the hooks, as Node's does.
  bool hooked_ = true;
  std::unordered_map<uint32_t, std::unique_ptr<LockFile>> files_;
  napi_ref found_buffer_ = nullptr;
  double* found_ = nullptr;
  uint32_t next_id_ = 1;
};

}  // namespace loop_lock

#endif  // LOOP_LOCK_FILE_TABLE_H_
