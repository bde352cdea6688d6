#include "file_table.h"

#include <utility>

namespace loop_lock {

namespace {
constexpr size_t kFoundValues = 2;
}  // namespace

FileTable::FileTable(napi_env env) : env_(env) {
  napi_add_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
  void* data = nullptr;
  napi_value buffer;
  if (napi_create_arraybuffer(env_, kFoundValues * sizeof(double), &data, &buffer) == napi_ok &&
      napi_create_reference(env_, buffer, 1, &found_buffer_) == napi_ok) {
    found_ = static_cast<double*>(data);
  }
}

FileTable::~FileTable() {
  if (hooked_) napi_remove_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
  // The instance data's finalizer runs before the environment's remaining
  // references are freed, so this one is still there to delete.
  if (found_buffer_ != nullptr) napi_delete_reference(env_, found_buffer_);
}

napi_value FileTable::FoundArray() const {
  napi_value buffer = nullptr;
  napi_value array = nullptr;
  if (found_buffer_ == nullptr || napi_get_reference_value(env_, found_buffer_, &buffer) != napi_ok ||
      napi_create_typedarray(env_, napi_float64_array, kFoundValues, buffer, 0, &array) != napi_ok) {
    return nullptr;
  }
  return array;
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
