#include "file_table.h"

#include <utility>

namespace loop_lock {

FileTable::FileTable(napi_env env) : env_(env) {
  napi_add_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
}

FileTable::~FileTable() {
  if (hooked_) napi_remove_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
}

uint32_t FileTable::Add(FileHandle handle, std::string path, FileId inode) {
  // Ids are never 0, and skip any still in use after wrapping around.
  uint32_t id;
  do {
    id = next_id_++;
  } while (id == 0 || files_.count(id) != 0);
  files_.emplace(id, std::make_unique<LockFile>(handle, std::move(path), inode));
  return id;
}

LockFile* FileTable::Find(uint32_t id) {
  auto it = files_.find(id);
  return it == files_.end() ? nullptr : it->second.get();
}

void FileTable::Close(uint32_t id) { files_.erase(id); }

void FileTable::OnEnvironmentTeardown(void* self) {
  auto* table = static_cast<FileTable*>(self);
  table->hooked_ = false;
  table->files_.clear();
}

}  // namespace loop_lock
