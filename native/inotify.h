// One environment's inotify descriptor (Linux), polled on its event loop:
// one per environment, not one per user of it, since inotify instances are
// limited (128 per user by default). Kernel watches are counted, so that
// users of one directory share its watch.
//
// It stays open for a while after its last watch is gone: closing an
// inotify descriptor waits for an RCU grace period (milliseconds, on the
// event loop), which a stream of short waits would otherwise pay each time.
#ifndef LOOP_LOCK_INOTIFY_H_
#define LOOP_LOCK_INOTIFY_H_

#ifdef __linux__

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
    // Events are waiting to be read (from fd()).
    virtual void OnInotifyReadable() = 0;
    // The last watch went away kIdleMs ago: time to Close().
    virtual void OnInotifyIdle() = 0;
    // Close() has finished and the object is gone.
    virtual void OnInotifyClosed() = 0;

   protected:
    ~Owner() = default;
  };

  // How long the descriptor outlives its last watch.
  static constexpr uint64_t kIdleMs = 1000;

  // A descriptor polled on `loop`, or nullptr (errno says why) when none
  // can be had: instances exhausted, or a kernel without inotify. The poll
  // keeps the loop alive only when KeepLoopAlive says so.
  static Inotify* Open(uv_loop_t* loop, Owner* owner);

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

  // Stops polling and closes the descriptor once its handles are closed;
  // then tells the owner and deletes itself.
  void Close();

 private:
  Inotify(Owner* owner, int fd) : owner_(owner), fd_(fd) {}
  ~Inotify() = default;

  Owner* owner_;
  int fd_;
  uv_poll_t poll_;
  uv_timer_t idle_;
  // Both handles are closed before the descriptor and the object go.
  int open_handles_ = 2;
  struct Watch {
    int references;
    bool dropped;  // by the kernel: nothing to remove
  };
  std::unordered_map<int, Watch> watches_;  // by watch descriptor
};

}  // namespace loop_lock

#endif  // __linux__

#endif  // LOOP_LOCK_INOTIFY_H_
