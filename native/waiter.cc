#include "waiter.h"

#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "arguments.h"
#include "delivery.h"
#include "inotify.h"
#include "lock_core.h"
#include "lock_file.h"

#ifdef __linux__
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>
#endif

namespace loop_lock {
namespace {

// Backoff of the safety-net poll, in milliseconds. After any wake-up that
// does not get the lock it restarts at the shortest delay: a holder's close
// is reported a moment before the kernel drops its flock (fsnotify_close
// runs before locks_remove_file), so a quick second try catches that race.
constexpr uint64_t kFirstRetryMs = 1;
constexpr uint64_t kMaxRetryMs = 100;

#ifdef __linux__
// What a wait watches its directory for: the lock file closed (a holder's
// release), and the file or the directory created, removed or moved.
constexpr uint32_t kWaitMask = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_DELETE | IN_CREATE |
                               IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF | IN_DELETE_SELF |
                               IN_ONLYDIR;
#endif

// What woke a wait up, in the order of how much it says (see Sleep).
enum class Wake {
  kTimer,    // the backoff poll
  kClosed,   // someone closed the lock file
  kRenamed,  // the lock file or its directory was created, deleted or renamed
};

class WaitManager;

struct Wait {
  WaitManager* manager;
  uint32_t id;
  uint32_t file_id;
  std::string directory;
  std::string name;
  // flock(LOCK_SH) rather than LOCK_EX: a FileLock's shared wait.
  bool shared = false;
  // Whether taking the lock claims it (the loop lock's record); a FileLock
  // writes none.
  bool claims = false;
  uint32_t pid = 0;
  // The record's prompt, copied once per wait (up to the 1 MiB a record may
  // hold): the claim writes it from the callback, without JavaScript.
  std::string prompt_json;
  int watch = -1;
  uint64_t delay = 0;
  uv_timer_t timer;
  Napi::FunctionReference callback;
  napi_async_context async_context = nullptr;
};

// The delay before the next try of a wait that did not get the lock.
uint64_t NextDelay(uint64_t delay, Wake wake) {
  return wake == Wake::kTimer ? std::clamp(delay * 2, kFirstRetryMs, kMaxRetryMs) : kFirstRetryMs;
}

// One try of a wait (LockFile::Attempt), claiming for `pid` unless
// prompt_json is null. When refused it checks that the path still names the
// file, unless the file's close woke it: a close cannot move the file; a
// rename of any directory above it sends no event here at all, which is
// why every backoff tick checks. The record is stamped when the lock is
// taken: *started_ms.
Status TryOnce(LockFile* file, bool shared, uint32_t pid, const std::string* prompt_json,
               Wake wake, Found* found, int64_t* started_ms) {
  LockRequest request;
  request.shared = shared;
  request.prompt_json = prompt_json;
  request.pid = pid;
  request.check_path = wake != Wake::kClosed;
  const Status status = file->Attempt(&request, found);
  *started_ms = request.started_ms;
  return status;
}

// All waits of one environment (the main thread or a worker), and the
// inotify descriptor they share (see inotify.h).
class WaitManager final
#ifdef __linux__
    : private Inotify::Owner
#endif
{
 public:
  WaitManager(napi_env env, FileTable* files) : env_(env), files_(files) {
    napi_get_uv_event_loop(env, &loop_);
    napi_add_async_cleanup_hook(env, OnTeardown, this, &cleanup_handle_);
  }

  FileTable* files() const { return files_; }
  Napi::Value Start(const Napi::CallbackInfo& info);
  void Cancel(uint32_t id);

  // What a blocking wait borrows (see Block): a watch on the lock file's
  // directory (-1 without inotify), and a sleep that it ends early.
  int Watch(const std::string& directory);
  void Unwatch(int watch);
  // Blocks for up to delay_ms, or until the directory watched by `watch`
  // reports a change to `name`.
  Wake Sleep(int watch, const std::string& name, uint64_t delay_ms);

 private:
  void Attempt(Wait* wait, Wake wake);
  // Settle a wait by calling it back, or, when the outcome cannot be built
  // (JavaScript can no longer run), by dropping it.
  void Fail(Wait* wait, const Status& status);
  void Report(Wait* wait, Found found, int64_t started_ms = -1);
  void Deliver(Wait* wait, size_t argc, const napi_value* argv);
  // A finished or cancelled wait leaves the table at once (Detach), and
  // gives back its watch and timer after its callback (Dispose).
  void Detach(Wait* wait);
  void Dispose(Wait* wait);
  void Arm(Wait* wait, uint64_t delay);

#ifdef __linux__
  // The inotify descriptor exists only while some wait watches a directory
  // (and a while after: see inotify.h), so an idle process holds none.
  int AddWatch(const std::string& directory);
  void RemoveWatch(int watch);
  void CloseInotify();
  void OnInotifyReadable() override;
  void OnInotifyIdle() override { CloseInotify(); }
  void OnInotifyClosed() override;
  // Reads every pending event and passes each to on_event with what it
  // means for a wait; then lets go of the watches the kernel dropped.
  template <typename OnEvent>
  void ReadEvents(OnEvent on_event);
  // The waits an event concerns.
  std::vector<uint32_t> Concerned(const struct inotify_event& event) const;
#endif

  static void OnTimer(uv_timer_t* timer);
  static void OnTeardown(napi_async_cleanup_hook_handle handle, void* self);
  void MaybeFinishTeardown();

  napi_env env_;
  FileTable* files_;
  uv_loop_t* loop_ = nullptr;
  napi_async_cleanup_hook_handle cleanup_handle_ = nullptr;
  std::unordered_map<uint32_t, Wait*> waits_;
  uint32_t next_id_ = 1;
  bool tearing_down_ = false;
  int closing_handles_ = 0;
#ifdef __linux__
  Inotify* inotify_ = nullptr;
#endif
};

// wait(handle, directory, name, shared, pid, promptJson, callback): number;
// promptJson null takes the lock without claiming it (pid is then ignored).
Napi::Value WaitManager::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t file_id = 0;
  std::string directory, name, prompt_json;
  bool shared = false;
  uint64_t pid = 0;
  const bool claims = !info[5].IsNull();
  if (!HandleArg(info, &file_id) || !StringArg(info, 1, "directory", &directory) ||
      !StringArg(info, 2, "name", &name) || !BoolArg(info, 3, "shared", &shared) ||
      !IntegerArg(info, 4, "pid", UINT32_MAX, &pid) ||
      (claims && !StringArg(info, 5, "promptJson", &prompt_json))) {
    return env.Undefined();
  }
  if (!info[6].IsFunction()) {
    ThrowArgument(info, false, "callback", "a function");
    return env.Undefined();
  }
  auto* wait = new Wait();
  wait->manager = this;
  wait->id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  wait->file_id = file_id;
  wait->directory = std::move(directory);
  wait->name = std::move(name);
  wait->shared = shared;
  wait->claims = claims;
  wait->pid = static_cast<uint32_t>(pid);
  wait->prompt_json = std::move(prompt_json);
  wait->callback = Napi::Persistent(info[6].As<Napi::Function>());
  napi_async_init(env, nullptr, Napi::String::New(env, "LoopLockWait"),
                  &wait->async_context);
  uv_timer_init(loop_, &wait->timer);
  wait->timer.data = wait;
#ifdef __linux__
  wait->watch = AddWatch(wait->directory);
#endif
  waits_.emplace(wait->id, wait);
  // The first try runs on the next turn of the loop, after the watch is in
  // place, so a release between the caller's failed try and now is not lost.
  Arm(wait, 0);
  return Napi::Number::New(env, wait->id);
}

void WaitManager::Arm(Wait* wait, uint64_t delay) {
  uv_timer_start(&wait->timer, OnTimer, delay, 0);
}

void WaitManager::OnTimer(uv_timer_t* timer) {
  auto* wait = static_cast<Wait*>(timer->data);
  wait->manager->Attempt(wait, Wake::kTimer);
}

void WaitManager::Attempt(Wait* wait, Wake wake) {
  Napi::HandleScope scope(Napi::Env{env_});
  LockFile* file = files_->Find(wait->file_id);
  // Environment teardown is the only thing that closes a file being waited
  // on (an abort cancels the wait first); a worker being terminated can no
  // longer run JavaScript before that. Either way nobody is left to take
  // the lock this wait would get.
  if (file == nullptr || !CanRunJavaScript(env_)) return Cancel(wait->id);
  // Claimed here, in the callback that woke up, rather than by calls from
  // JavaScript: the first microseconds after a wake-up run on cold caches,
  // and every crossing into JavaScript and back costs several times what
  // it does warm.
  Found found = Found::kHeld;
  int64_t started_ms = -1;
  const Status status = TryOnce(file, wait->shared, wait->pid,
                                wait->claims ? &wait->prompt_json : nullptr, wake, &found,
                                &started_ms);
  if (!status.ok()) return Fail(wait, status);
  if (found != Found::kHeld) return Report(wait, found, started_ms);
  wait->delay = NextDelay(wait->delay, wake);
  Arm(wait, wait->delay);
}

void WaitManager::Fail(Wait* wait, const Status& status) {
  napi_value failure = NewFailure(env_, status);
  if (failure == nullptr) return Cancel(wait->id);
  Deliver(wait, 1, &failure);
}

// Called back as Node calls back: (failure) or (null, outcome[, started]).
void WaitManager::Report(Wait* wait, Found found, int64_t started_ms) {
  napi_value args[3];
  const size_t argc = found == Found::kLocked && started_ms >= 0 ? 3 : 2;
  if (napi_get_null(env_, &args[0]) != napi_ok ||
      napi_create_uint32(env_, static_cast<uint32_t>(found), &args[1]) != napi_ok ||
      (argc == 3 &&
       napi_create_double(env_, static_cast<double>(started_ms), &args[2]) != napi_ok)) {
    return Cancel(wait->id);
  }
  Deliver(wait, argc, args);
}

void WaitManager::Deliver(Wait* wait, size_t argc, const napi_value* argv) {
  napi_value callback = wait->callback.Value();
  napi_async_context context = wait->async_context;
  wait->async_context = nullptr;
  // Out of the table first, so a callback that cancels or starts waits sees
  // a consistent manager; the slower clean-up (inotify_rm_watch can take
  // tens of microseconds) waits until the callback has run.
  Detach(wait);
  CallBack(env_, context, callback, argc, argv);
  napi_async_destroy(env_, context);
  Dispose(wait);
}

void WaitManager::Cancel(uint32_t id) {
  auto it = waits_.find(id);
  if (it == waits_.end()) return;
  Wait* wait = it->second;
  if (wait->async_context != nullptr) napi_async_destroy(env_, wait->async_context);
  wait->async_context = nullptr;
  Detach(wait);
  Dispose(wait);
}

void WaitManager::Detach(Wait* wait) {
  waits_.erase(wait->id);
  uv_timer_stop(&wait->timer);
}

void WaitManager::Dispose(Wait* wait) {
#ifdef __linux__
  if (wait->watch >= 0) RemoveWatch(wait->watch);
#endif
  wait->callback.Reset();
  ++closing_handles_;
  uv_close(reinterpret_cast<uv_handle_t*>(&wait->timer), [](uv_handle_t* handle) {
    auto* closed = static_cast<Wait*>(handle->data);
    WaitManager* manager = closed->manager;
    delete closed;
    --manager->closing_handles_;
    manager->MaybeFinishTeardown();
  });
}

#ifdef __linux__
int WaitManager::AddWatch(const std::string& directory) {
  // Without inotify (instances exhausted, or a kernel without it) waits
  // still work, by the backoff poll alone.
  if (inotify_ == nullptr) inotify_ = Inotify::Open(loop_, this);
  if (inotify_ == nullptr) return -1;
  const int watch = inotify_->AddWatch(directory, kWaitMask);
  if (watch < 0 && !inotify_->HasWatches()) CloseInotify();
  return watch;
}

void WaitManager::RemoveWatch(int watch) {
  if (inotify_ != nullptr) inotify_->RemoveWatch(watch);
}

void WaitManager::CloseInotify() {
  Inotify* inotify = inotify_;
  inotify_ = nullptr;
  ++closing_handles_;
  inotify->Close();
}

void WaitManager::OnInotifyClosed() {
  --closing_handles_;
  MaybeFinishTeardown();
}

void WaitManager::OnInotifyReadable() {
  ReadEvents([this](const struct inotify_event& event, Wake wake) {
    // Attempt() may finish waits and run JavaScript, which may cancel or
    // start others: look each one up again.
    for (uint32_t id : Concerned(event)) {
      auto it = waits_.find(id);
      if (it != waits_.end()) Attempt(it->second, wake);
    }
  });
}

template <typename OnEvent>
void WaitManager::ReadEvents(OnEvent on_event) {
  alignas(struct inotify_event) char buffer[16 * 1024];
  // on_event may run JavaScript, which may finish the last wait and close
  // the inotify descriptor: stop reading as soon as it is gone.
  while (inotify_ != nullptr) {
    const int fd = inotify_->fd();
    const ssize_t length = read(fd, buffer, sizeof buffer);
    if (length <= 0) break;
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      const bool moved = (event->mask & (IN_Q_OVERFLOW | IN_DELETE | IN_CREATE | IN_MOVED_FROM |
                                         IN_MOVED_TO | IN_MOVE_SELF | IN_DELETE_SELF |
                                         IN_IGNORED)) != 0;
      on_event(*event, moved ? Wake::kRenamed : Wake::kClosed);
      if ((event->mask & IN_IGNORED) != 0 && inotify_ != nullptr && inotify_->fd() == fd) {
        // The directory is gone and the kernel dropped the watch; waits
        // still on it were just told their file is stale.
        inotify_->Forget(event->wd);
        for (const auto& [id, wait] : waits_) {
          if (wait->watch == event->wd) RemoveWatch(wait->watch), wait->watch = -1;
        }
      }
    }
  }
}

std::vector<uint32_t> WaitManager::Concerned(const struct inotify_event& event) const {
  const bool overflow = (event.mask & IN_Q_OVERFLOW) != 0;
  std::vector<uint32_t> ids;
  for (const auto& [id, wait] : waits_) {
    if (overflow ||
        (wait->watch == event.wd && (event.len == 0 || wait->name == event.name))) {
      ids.push_back(id);
    }
  }
  return ids;
}
#endif

int WaitManager::Watch(const std::string& directory) {
#ifdef __linux__
  return AddWatch(directory);
#else
  (void)directory;
  return -1;
#endif
}

void WaitManager::Unwatch(int watch) {
#ifdef __linux__
  if (watch >= 0) RemoveWatch(watch);
#else
  (void)watch;
#endif
}

Wake WaitManager::Sleep(int watch, const std::string& name, uint64_t delay_ms) {
#ifdef __linux__
  // A negative descriptor makes poll() a plain sleep: the backoff alone,
  // without an inotify instance.
  struct pollfd entry = {-1, POLLIN, 0};
  if (watch >= 0 && inotify_ != nullptr) entry.fd = inotify_->fd();
  // EINTR (a signal) ends the slice early, like the timeout.
  if (poll(&entry, 1, static_cast<int>(delay_ms)) <= 0) return Wake::kTimer;
  // Something changed in some watched directory: try again at once, with
  // a path check if it was a rename. Events for this thread's pending
  // acquire() calls are not lost: each gets its try as soon as the event
  // loop runs again.
  Wake wake = Wake::kClosed;
  ReadEvents([&](const struct inotify_event& event, Wake kind) {
    const bool ours = (event.mask & IN_Q_OVERFLOW) != 0 ||
                      (event.wd == watch && (event.len == 0 || name == event.name));
    if (ours) wake = std::max(wake, kind);
    for (uint32_t id : Concerned(event)) {
      Wait* wait = waits_.at(id);
      wait->delay = 0;
      Arm(wait, 0);
    }
  });
  return wake;
#else
  // The backoff alone (macOS, Windows).
  (void)watch;
  (void)name;
  SleepMs(delay_ms);
  return Wake::kTimer;
#endif
}

void WaitManager::OnTeardown(napi_async_cleanup_hook_handle handle, void* self) {
  auto* manager = static_cast<WaitManager*>(self);
  manager->tearing_down_ = true;
  while (!manager->waits_.empty()) manager->Cancel(manager->waits_.begin()->first);
#ifdef __linux__
  if (manager->inotify_ != nullptr) manager->CloseInotify();
#endif
  (void)handle;
  manager->MaybeFinishTeardown();
}

void WaitManager::MaybeFinishTeardown() {
  if (!tearing_down_ || closing_handles_ > 0) return;
  napi_remove_async_cleanup_hook(cleanup_handle_);
  delete this;
}

// lockBlocking(handle, directory, name, shared[, pid, promptJson]): once
// flock(LOCK_SH or LOCK_EX) is held, the record's stamp (ms since the epoch)
// when it claimed for pid, Found::kLocked when promptJson is absent or null
// (no record: a FileLock); Found::kStale when the path no longer names the
// file; or nothing once the environment can no longer run JavaScript.
//
// Waits as acquire() does, on inotify and the backoff poll, but in this
// thread: never inside flock(LOCK_EX), which nothing can interrupt short of
// a signal, so a worker blocked here would keep process.exit() joining it,
// and worker.terminate() waiting, forever. Each slice ends by asking
// whether JavaScript can still run: the only sign, from inside the thread,
// that it is being torn down. `manager` lends the environment's inotify
// descriptor; without one (see InitBlockingWait) the backoff alone wakes it.
napi_value Block(napi_env env, FileTable* files, WaitManager* manager,
                 const Napi::CallbackInfo& info) {
  LockFile* file = FileArg(info, files);
  std::string directory, name, prompt_json;
  bool shared = false;
  uint64_t pid = 0;
  const bool claims = info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined();
  if (file == nullptr || !StringArg(info, 1, "directory", &directory) ||
      !StringArg(info, 2, "name", &name) || !BoolArg(info, 3, "shared", &shared) ||
      (claims && (!IntegerArg(info, 4, "pid", UINT32_MAX, &pid) ||
                  !StringArg(info, 5, "promptJson", &prompt_json)))) {
    return nullptr;
  }
  const std::string* record = claims ? &prompt_json : nullptr;
  Found found = Found::kHeld;
  int64_t started_ms = -1;
  Status status = TryOnce(file, shared, static_cast<uint32_t>(pid), record, Wake::kClosed,
                          &found, &started_ms);
  if (status.ok() && found == Found::kHeld) {
    // In place before the next try, so a release in between is not lost.
    const int watch = manager == nullptr ? -1 : manager->Watch(directory);
    Wake wake = Wake::kClosed;
    uint64_t delay = 0;
    do {
      status = TryOnce(file, shared, static_cast<uint32_t>(pid), record, wake, &found,
                       &started_ms);
      if (!status.ok() || found != Found::kHeld) break;
      delay = NextDelay(delay, wake);
      if (manager != nullptr) {
        wake = manager->Sleep(watch, name, delay);
      } else {
        SleepMs(delay);
        wake = Wake::kTimer;
      }
    } while (CanRunJavaScript(env));
    if (manager != nullptr) manager->Unwatch(watch);
  }
  napi_value outcome = nullptr;
  if (!status.ok()) {
    ThrowFailure(env, status);
  } else if (found == Found::kLocked && claims) {
    napi_create_double(env, static_cast<double>(started_ms), &outcome);
  } else if (found != Found::kHeld) {
    napi_create_uint32(env, static_cast<uint32_t>(found), &outcome);
  }
  return outcome;
}

}  // namespace

void InitWaiter(Napi::Env env, Napi::Object exports, FileTable* files) {
  auto* manager = new WaitManager(env, files);
  exports.Set("wait", Napi::Function::New(
                          env,
                          [](const Napi::CallbackInfo& info) {
                            return static_cast<WaitManager*>(info.Data())->Start(info);
                          },
                          "wait", manager));
  exports.Set("cancelWait", Napi::Function::New(
                                env,
                                [](const Napi::CallbackInfo& info) -> Napi::Value {
                                  uint64_t id = 0;
                                  if (IntegerArg(info, 0, "id", UINT32_MAX, &id)) {
                                    static_cast<WaitManager*>(info.Data())
                                        ->Cancel(static_cast<uint32_t>(id));
                                  }
                                  return info.Env().Undefined();
                                },
                                "cancelWait", manager));
  exports.Set("lockBlocking",
              Napi::Function::New(
                  env,
                  [](const Napi::CallbackInfo& info) {
                    auto* manager = static_cast<WaitManager*>(info.Data());
                    return Napi::Value(info.Env(),
                                       Block(info.Env(), manager->files(), manager, info));
                  },
                  "lockBlocking", manager));
}

void InitBlockingWait(Napi::Env env, Napi::Object exports, FileTable* files) {
  exports.Set("lockBlocking", Napi::Function::New(
                                  env,
                                  [](const Napi::CallbackInfo& info) {
                                    auto* files = static_cast<FileTable*>(info.Data());
                                    return Napi::Value(info.Env(),
                                                       Block(info.Env(), files, nullptr, info));
                                  },
                                  "lockBlocking", files));
}

}  // namespace loop_lock
