#include "lock_file.h"

#include <utility>

#include "lock_core.h"

namespace loop_lock {

LockFile::LockFile(napi_env env, int fd, std::string path)
    : env_(env), fd_(fd), path_(std::move(path)) {
  napi_add_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
}

LockFile::~LockFile() { Close(); }

void LockFile::Close() {
  if (fd_ < 0) return;
  Release(fd_, locked_);
  fd_ = -1;
  napi_remove_env_cleanup_hook(env_, OnEnvironmentTeardown, this);
}

void LockFile::OnEnvironmentTeardown(void* self) {
  auto* file = static_cast<LockFile*>(self);
  if (file->fd_ < 0) return;
  Release(file->fd_, file->locked_);
  file->fd_ = -1;
}

}  // namespace loop_lock
