#include "inotify.h"

#ifdef __linux__

#include <unistd.h>

namespace loop_lock {

Inotify* Inotify::Open(uv_loop_t* loop, Owner* owner) {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return nullptr;
  auto* inotify = new Inotify(owner, fd);
  if (uv_poll_init(loop, &inotify->poll_, fd) != 0) {
    close(fd);
    delete inotify;
    return nullptr;
  }
  inotify->poll_.data = inotify;
  uv_timer_init(loop, &inotify->idle_);
  inotify->idle_.data = inotify;
  uv_unref(reinterpret_cast<uv_handle_t*>(&inotify->idle_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&inotify->poll_));
  uv_poll_start(&inotify->poll_, UV_READABLE, [](uv_poll_t* poll, int status, int) {
    if (status == 0) static_cast<Inotify*>(poll->data)->owner_->OnInotifyReadable();
  });
  return inotify;
}

int Inotify::AddWatch(const std::string& directory, uint32_t mask) {
  const int watch = inotify_add_watch(fd_, directory.c_str(), mask);
  if (watch < 0) return -1;
  uv_timer_stop(&idle_);
  ++watch_refs_[watch];
  return watch;
}

void Inotify::RemoveWatch(int watch) {
  auto it = watch_refs_.find(watch);
  if (it == watch_refs_.end() || --it->second > 0) return;
  inotify_rm_watch(fd_, watch);
  watch_refs_.erase(it);
  if (!watch_refs_.empty()) return;
  uv_timer_start(&idle_, [](uv_timer_t* idle) {
    static_cast<Inotify*>(idle->data)->owner_->OnInotifyIdle();
  }, kIdleMs, 0);
}

void Inotify::Close() {
  uv_poll_stop(&poll_);
  uv_timer_stop(&idle_);
  const auto on_closed = [](uv_handle_t* handle) {
    auto* inotify = static_cast<Inotify*>(handle->data);
    if (--inotify->open_handles_ > 0) return;
    close(inotify->fd_);
    Owner* owner = inotify->owner_;
    delete inotify;
    owner->OnInotifyClosed();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_closed);
}

}  // namespace loop_lock

#endif  // __linux__
