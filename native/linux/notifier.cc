// The notifier on Linux: inotify. The descriptor exists only while
// something is watched (and a second after: see Notifier::kIdleMs), so an
// idle process holds none.
#include "../notifier.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <string>
#include <vector>

#include "inotify.h"

namespace loop_lock {
namespace {

uint32_t MaskOf(uint32_t kinds) {
  uint32_t mask = IN_ONLYDIR | IN_MOVE_SELF | IN_DELETE_SELF;
  if ((kinds & kEntryOpened) != 0) mask |= IN_OPEN;
  if ((kinds & kEntryWritten) != 0) mask |= IN_MODIFY;
  if ((kinds & kEntryClosedWriter) != 0) mask |= IN_CLOSE_WRITE;
  if ((kinds & kEntryClosedReader) != 0) mask |= IN_CLOSE_NOWRITE;
  if ((kinds & kEntryNamed) != 0) mask |= IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
  return mask;
}

uint32_t KindsOf(uint32_t mask) {
  uint32_t kinds = 0;
  if ((mask & IN_OPEN) != 0) kinds |= kEntryOpened;
  if ((mask & IN_MODIFY) != 0) kinds |= kEntryWritten;
  if ((mask & IN_CLOSE_WRITE) != 0) kinds |= kEntryClosedWriter;
  if ((mask & IN_CLOSE_NOWRITE) != 0) kinds |= kEntryClosedReader;
  if ((mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) != 0) kinds |= kEntryNamed;
  if ((mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_UNMOUNT)) != 0) kinds |= kDirectoryGone;
  if ((mask & IN_IGNORED) != 0) kinds |= kWatchDropped;
  if ((mask & IN_Q_OVERFLOW) != 0) kinds |= kChangesLost;
  return kinds;
}

// How many changes read outside the event loop are kept for it: as many as
// the kernel queues by default (max_queued_events). Beyond that, as the
// kernel does, one kChangesLost stands for the rest.
constexpr size_t kMaxHeld = 16384;

// A change read outside the event loop, kept to be told on it.
struct HeldChange {
  int watch;
  uint32_t kinds;
  std::string name;
};

class InotifyNotifier final : public Notifier, private Inotify::Owner {
 public:
  InotifyNotifier(uv_loop_t* loop, int owners) : loop_(loop), owners_(owners) {}

  bool Release(Client* client) override;
  Status AddWatch(const std::string& directory, uint32_t kinds, int* watch) override;
  void RemoveWatch(int watch) override;
  void CloseIfUnused() override;
  void KeepLoopAlive(bool alive) override;
  bool Block(int watch, uint64_t timeout_ms,
             const std::function<void(const Change&)>& seen) override;

 private:
  void CloseInotify();
  // Reads what is queued, passing each change to `on_change` with the watch
  // dropped by the kernel forgotten first; false when nothing was.
  template <typename OnChange>
  bool Read(OnChange on_change);
  void OnInotifyReadable() override;
  void OnInotifyIdle() override { CloseInotify(); }
  void OnInotifyClosed() override;
  void MaybeDelete();
  void Hold(const Change& change);

  uv_loop_t* loop_;
  Inotify* inotify_ = nullptr;
  bool keep_alive_ = false;
  std::vector<HeldChange> held_;  // read by Block, not yet told
  int owners_;                    // clients not yet released
  int closing_ = 0;               // descriptors still closing
  Client* last_ = nullptr;        // released last, waiting for the close
};

bool InotifyNotifier::Release(Client* client) {
  --owners_;
  Forget(client);
  if (owners_ > 0) return false;
  if (inotify_ != nullptr) CloseInotify();
  if (closing_ == 0) {
    delete this;
    return false;
  }
  last_ = client;
  return true;
}

Status InotifyNotifier::AddWatch(const std::string& directory, uint32_t kinds, int* watch) {
  if (inotify_ == nullptr) {
    inotify_ = Inotify::Open(loop_, this, kIdleMs);
    if (inotify_ == nullptr) return Status{errno, "inotify_init1"};
    inotify_->KeepLoopAlive(keep_alive_);
  }
  *watch = inotify_->AddWatch(directory, MaskOf(kinds));
  if (*watch >= 0) return Status{};
  const int error = errno;
  CloseIfUnused();
  return Status{error, "inotify_add_watch"};
}

void InotifyNotifier::RemoveWatch(int watch) {
  if (inotify_ != nullptr && watch >= 0) inotify_->RemoveWatch(watch);
}

void InotifyNotifier::CloseIfUnused() {
  if (inotify_ != nullptr && !inotify_->HasWatches()) CloseInotify();
}

void InotifyNotifier::KeepLoopAlive(bool alive) {
  keep_alive_ = alive;
  if (inotify_ != nullptr) inotify_->KeepLoopAlive(alive);
}

void InotifyNotifier::CloseInotify() {
  Inotify* inotify = inotify_;
  inotify_ = nullptr;
  held_.clear();  // their watch numbers name nothing once it is closed
  ++closing_;
  inotify->Close();
}

void InotifyNotifier::OnInotifyClosed() {
  --closing_;
  MaybeDelete();
}

void InotifyNotifier::MaybeDelete() {
  if (owners_ > 0 || closing_ > 0) return;
  Client* last = last_;
  delete this;
  if (last != nullptr) last->OnNotifierClosed();
}

template <typename OnChange>
bool InotifyNotifier::Read(OnChange on_change) {
  alignas(struct inotify_event) char buffer[16 * 1024];
  bool read_any = false;
  // on_change may run JavaScript, which may close the descriptor (a watch
  // that could not start): stop reading as soon as it is gone.
  for (Inotify* inotify = inotify_; inotify != nullptr && inotify == inotify_;) {
    const ssize_t length = read(inotify->fd(), buffer, sizeof buffer);
    if (length <= 0) break;
    read_any = true;
    for (ssize_t offset = 0; offset < length && inotify == inotify_;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      const uint32_t kinds = KindsOf(event->mask);
      // Its references stay until their users let go, and the last one
      // has no kernel watch left to remove.
      if ((kinds & kWatchDropped) != 0) inotify->Forget(event->wd);
      on_change(Change{event->wd, kinds, event->len == 0 ? "" : event->name});
    }
  }
  return read_any;
}

void InotifyNotifier::OnInotifyReadable() {
  // What Block read first, in order: told before anything newer.
  std::vector<HeldChange> held;
  held.swap(held_);
  for (const HeldChange& change : held) Tell(Change{change.watch, change.kinds, change.name});
  Read([this](const Change& change) { Tell(change); });
  Told();
}

bool InotifyNotifier::Block(int watch, uint64_t timeout_ms,
                            const std::function<void(const Change&)>& seen) {
  // A negative descriptor makes poll() a plain sleep: the backoff alone.
  struct pollfd entry = {-1, POLLIN, 0};
  if (watch >= 0 && inotify_ != nullptr) entry.fd = inotify_->fd();
  // EINTR (a signal) ends the sleep early, like the timeout.
  if (poll(&entry, 1, static_cast<int>(timeout_ms)) <= 0) return false;
  const bool read_any = Read([this, &seen](const Change& change) {
    seen(change);
    Hold(change);
  });
  // The clients hear of them as soon as the event loop runs again.
  if (!held_.empty()) inotify_->Defer();
  return read_any;
}

void InotifyNotifier::Hold(const Change& change) {
  if (held_.size() < kMaxHeld) {
    held_.push_back(HeldChange{change.watch, change.kinds, std::string(change.name)});
  } else if (held_.back().kinds != kChangesLost) {
    held_.push_back(HeldChange{-1, kChangesLost, ""});
  }
}

}  // namespace

Notifier* Notifier::Create(napi_env env, int owners) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return nullptr;
  return new InotifyNotifier(loop, owners);
}

}  // namespace loop_lock
