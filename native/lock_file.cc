#include "lock_file.h"

#include <utility>

#include "lock_core.h"

namespace loop_lock {

void LockFile::Close() {
  if (fd_ < 0) return;
  Release(fd_, locked_);
  fd_ = -1;
}

FileTable::FileTable(napi_env env) : env_(env) {
  napi_add_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
}

FileTable::~FileTable() {
  napi_remove_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
}

uint32_t FileTable::Add(int fd, std::string path) {
  // Ids are never 0, and skip any still in use after wrapping around.
  uint32_t id;
  do {
    id = next_id_++;
  } while (id == 0 || files_.count(id) != 0);
  files_.emplace(id, std::make_unique<LockFile>(fd, std::move(path)));
  return id;
}

LockFile* FileTable::Find(uint32_t id) {
  auto it = files_.find(id);
  return it == files_.end() ? nullptr : it->second.get();
}

void FileTable::Close(uint32_t id) { files_.erase(id); }

void FileTable::OnEnvironmentTeardown(void* self) {
  static_cast<FileTable*>(self)->files_.clear();
}

}  // namespace loop_lock
