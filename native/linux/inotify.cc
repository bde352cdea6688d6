#include "inotify.h"

#include <unistd.h>

#include <cerrno>

namespace loop_lock {

Inotify* Inotify::Open(uv_loop_t* loop, Owner* owner, uint64_t idle_ms) {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return nullptr;
  auto* inotify = new Inotify(owner, fd, idle_ms);
  if (uv_poll_init(loop, &inotify->poll_, fd) != 0) {
    close(fd);
    delete inotify;
    errno = EINVAL;
    return nullptr;
  }
  inotify->poll_.data = inotify;
  uv_timer_init(loop, &inotify->idle_);
  inotify->idle_.data = inotify;
  uv_unref(reinterpret_cast<uv_handle_t*>(&inotify->idle_));
  uv_timer_init(loop, &inotify->deferred_);
  inotify->deferred_.data = inotify;
  uv_unref(reinterpret_cast<uv_handle_t*>(&inotify->deferred_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&inotify->poll_));
  uv_poll_start(&inotify->poll_, UV_READABLE, [](uv_poll_t* poll, int status, int) {
    if (status == 0) static_cast<Inotify*>(poll->data)->owner_->OnInotifyReadable();
  });
  return inotify;
}

int Inotify::AddWatch(const std::string& directory, uint32_t mask) {
  const int watch = inotify_add_watch(fd_, directory.c_str(), mask | IN_MASK_ADD);
  if (watch < 0) return -1;
  uv_timer_stop(&idle_);
  Watch& entry = watches_[watch];
  ++entry.references;
  // A number the kernel handed out again after dropping it names a new watch.
  entry.dropped = false;
  return watch;
}

void Inotify::RemoveWatch(int watch) {
  auto it = watches_.find(watch);
  if (it == watches_.end() || --it->second.references > 0) return;
  if (!it->second.dropped) inotify_rm_watch(fd_, watch);
  watches_.erase(it);
  if (!watches_.empty()) return;
  uv_timer_start(&idle_, [](uv_timer_t* idle) {
    static_cast<Inotify*>(idle->data)->owner_->OnInotifyIdle();
  }, idle_ms_, 0);
}

void Inotify::Forget(int watch) {
  auto it = watches_.find(watch);
  if (it != watches_.end()) it->second.dropped = true;
}

void Inotify::KeepLoopAlive(bool alive) {
  auto* poll = reinterpret_cast<uv_handle_t*>(&poll_);
  if (alive) {
    uv_ref(poll);
  } else {
    uv_unref(poll);
  }
}

void Inotify::Defer() {
  uv_timer_start(&deferred_, [](uv_timer_t* deferred) {
    static_cast<Inotify*>(deferred->data)->owner_->OnInotifyReadable();
  }, 0, 0);
}

void Inotify::Close() {
  uv_poll_stop(&poll_);
  uv_timer_stop(&idle_);
  uv_timer_stop(&deferred_);
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
  uv_close(reinterpret_cast<uv_handle_t*>(&deferred_), on_closed);
}

}  // namespace loop_lock

