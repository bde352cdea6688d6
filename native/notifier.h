// Change notification for one environment (the main thread or a worker):
// the kernel tells the event loop when something happens in a watched
// directory, so that waits (waiter.cc) retry and watches (watcher.cc) probe
// only when something did. One notifier per environment, shared by both,
// since kernel instances are limited (inotify: 128 per user by default);
// users of one directory share its kernel watch.
//
// Linux has one (inotify: native/linux/notifier.cc); elsewhere there is none
// (native/no_notifier.cc): waits poll on their backoff timer and watch()
// polls from JavaScript. Another platform's notifier is one file beside
// those, implementing this class.
#ifndef LOOP_LOCK_NOTIFIER_H_
#define LOOP_LOCK_NOTIFIER_H_

#include <node_api.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lock_core.h"

namespace loop_lock {

// What happened in a watched directory: bits of Change::kinds, and of what
// a watch asks for (Notifier::AddWatch).
enum ChangeKind : uint32_t {
  kEntryOpened = 1,         // an entry was opened
  kEntryWritten = 2,        // ... written
  kEntryClosedWriter = 4,   // ... closed by a descriptor open for writing
  kEntryClosedReader = 8,   // ... closed by a descriptor open read-only
  kEntryNamed = 16,         // an entry was created, removed or renamed
  kDirectoryGone = 32,      // the directory itself was moved, removed or unmounted
  kWatchDropped = 64,       // the kernel dropped the watch (its directory is gone)
  kChangesLost = 128,       // the kernel's queue overflowed: anything may have changed
};

struct Change {
  int watch;              // the watch it came through; any, with kChangesLost
  uint32_t kinds;         // ChangeKind bits
  std::string_view name;  // the entry concerned; empty when the directory itself
};

class Notifier {
 public:
  // A user of the notifier (the waits, the watches), told on the event loop.
  class Client {
   public:
    // One change; may run JavaScript, which may add or remove watches.
    virtual void OnChange(const Change& change) = 0;
    // Every change queued so far has been told.
    virtual void OnChangesTold() {}
    // The notifier this client let go of last has closed (see Release).
    virtual void OnNotifierClosed() {}

   protected:
    ~Client() = default;
  };

  // How long the kernel instance outlives the last watch: closing one can
  // wait for an RCU grace period (milliseconds, on the event loop), which a
  // stream of short waits would otherwise pay each time.
  static constexpr uint64_t kIdleMs = 1000;

  // The environment's notifier, for `owners` clients that each Attach and,
  // at their teardown, Release it; nullptr where the platform has none or
  // the environment has no event loop.
  static Notifier* Create(napi_env env, int owners);

  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void Attach(Client* client) { clients_.push_back(client); }
  // Lets go at teardown. True when the client must wait for its
  // OnNotifierClosed before its environment may go: it was the last, and
  // the kernel instance is still closing.
  virtual bool Release(Client* client) = 0;

  // Watches `directory` for `kinds`, or takes one more reference to its
  // watch: *watch is its number. Opens the kernel instance on first use. A
  // kernel watch's kinds only grow while it lives, so users of one
  // directory who want different changes each get theirs, and each filters.
  virtual Status AddWatch(const std::string& directory, uint32_t kinds, int* watch) = 0;
  // Lets go of one reference; the last one removes the kernel watch, and
  // with none left the instance closes kIdleMs later.
  virtual void RemoveWatch(int watch) = 0;
  // Closes the kernel instance now if nothing is watched (a watch that
  // could not start should not keep one open for a second).
  virtual void CloseIfUnused() = 0;
  // Whether waiting for changes keeps the event loop alive, as a live
  // fs.watch() does. Off until set.
  virtual void KeepLoopAlive(bool alive) = 0;

  // Blocks this thread for up to timeout_ms, or until a change comes
  // through `watch` (-1: a plain sleep), showing each change read to
  // `seen`; they are told to the clients as well, on the event loop's next
  // turn. Returns whether anything was read.
  virtual bool Block(int watch, uint64_t timeout_ms,
                     const std::function<void(const Change&)>& seen) = 0;

 protected:
  Notifier() = default;
  virtual ~Notifier() = default;

  // Tells every client, on the event loop.
  void Tell(const Change& change);
  void Told();
  // Forgets `client`; true when it was the last.
  bool Forget(Client* client);

 private:
  std::vector<Client*> clients_;
};

inline void Notifier::Tell(const Change& change) {
  // By index: a client may run JavaScript, and nothing it does adds one.
  for (size_t i = 0; i < clients_.size(); ++i) clients_[i]->OnChange(change);
}

inline void Notifier::Told() {
  for (size_t i = 0; i < clients_.size(); ++i) clients_[i]->OnChangesTold();
}

inline bool Notifier::Forget(Client* client) {
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    if (*it == client) {
      clients_.erase(it);
      break;
    }
  }
  return clients_.empty();
}

}  // namespace loop_lock

#endif  // LOOP_LOCK_NOTIFIER_H_
