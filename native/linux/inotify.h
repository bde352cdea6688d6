// One inotify descriptor, polled on an event loop: the kernel instance
// behind the environment's notifier (notifier.cc beside this file). Kernel
// watches are counted, so that users of one directory share its watch.
#ifndef LOOP_LOCK_LINUX_INOTIFY_H_
#define LOOP_LOCK_LINUX_INOTIFY_H_

#include <sys/inotify.h>
#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_map>

namespace loop_lock {

class Inotify {
 public:
  // What the descriptor tells its owner, on the event loop.
  class Owner {
   public:
    // Events are waiting to be read (from fd()), or Defer() asked to be
    // called back.
    virtual void OnInotifyReadable() = 0;
    // The last watch went away idle_ms ago: time to Close().
    virtual void OnInotifyIdle() = 0;
    // Close() has finished and the object is gone.
    virtual void OnInotifyClosed() = 0;

   protected:
    ~Owner() = default;
  };

  // A descriptor polled on `loop`, or nullptr (errno says why) when none
  // can be had: instances exhausted, or a kernel without inotify. The poll
  // keeps the loop alive only when KeepLoopAlive says so. With no watch
  // left, it tells its owner it is idle idle_ms later.
  static Inotify* Open(uv_loop_t* loop, Owner* owner, uint64_t idle_ms);

  Inotify(const Inotify&) = delete;
  Inotify& operator=(const Inotify&) = delete;

  int fd() const { return fd_; }

  // Watches `directory` for `mask`, or takes one more reference to its
  // watch: the watch descriptor, or -1 (errno says why) when it cannot be
  // watched. A kernel watch's mask only grows while it lives (IN_MASK_ADD),
  // so users of one directory who want different events each get theirs,
  // and each filters what it reads.
  int AddWatch(const std::string& directory, uint32_t mask);
  // Lets go of one reference; the last one removes the kernel watch, and
  // with no watch left the idle timer starts.
  void RemoveWatch(int watch);
  // The kernel dropped `watch` (IN_IGNORED: its directory is gone): its
  // references stay until their users let go, and the last one has no
  // kernel watch left to remove.
  void Forget(int watch);
  bool HasWatches() const { return !watches_.empty(); }

  // Whether the poll keeps the event loop alive, as a live fs.watch() does.
  void KeepLoopAlive(bool alive);

  // Calls OnInotifyReadable on the loop's next turn: for events read
  // outside the loop (Notifier::Block).
  void Defer();

  // Stops polling and closes the descriptor once its handles are closed;
  // then tells the owner and deletes itself.
  void Close();

 private:
  Inotify(Owner* owner, int fd, uint64_t idle_ms) : owner_(owner), fd_(fd), idle_ms_(idle_ms) {}
  ~Inotify() = default;

  Owner* owner_;
  int fd_;
  uint64_t idle_ms_;
  uv_poll_t poll_;
  uv_timer_t idle_;
  uv_timer_t deferred_;
  // Every handle is closed before the descriptor and the object go.
  int open_handles_ = 3;
  struct Watch {
    int references;
    bool dropped;  // by the kernel: nothing to remove
  };
  std::unordered_map<int, Watch> watches_;  // by watch descriptor
};

}  // namespace loop_lock

#endif  // LOOP_LOCK_LINUX_INOTIFY_H_
