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
#include "file_table.h"
#include "lock_core.h"
#include "lock_file.h"
#include "notifier.h"
#include "wait_step.h"

namespace loop_lock {
namespace {

class WaitManager;

struct Wait {
  WaitManager* manager;
  uint32_t id;
  uint32_t file_id;
  std::string directory;
  std::string name;
  // What each try asks for: shared or exclusive, a record or none (a
  // FileLock). The record's prompt is copied once per wait (up to the 1 MiB
  // a record may hold): the claim writes it from the callback, without
  // JavaScript.
  LockRequest request;
  std::string prompt_json;
  int watch = -1;
  uint64_t delay = 0;
  uv_timer_t timer;
  Napi::FunctionReference callback;
  napi_async_context async_context = nullptr;
};

// All waits of one environment (the main thread or a worker), woken by the
// environment's notifier (see notifier.h), where there is one.
class WaitManager final : private Notifier::Client {
 public:
  WaitManager(napi_env env, FileTable* files, Notifier* notifier)
      : env_(env), files_(files), notifier_(notifier) {
    napi_get_uv_event_loop(env, &loop_);
    napi_add_async_cleanup_hook(env, OnTeardown, this, &cleanup_handle_);
    if (notifier_ != nullptr) notifier_->Attach(this);
  }

  FileTable* files() const { return files_; }
  Napi::Value Start(const Napi::CallbackInfo& info);
  void Cancel(uint32_t id);

  Notifier* notifier() const { return notifier_; }

 private:
  // A watch on a wait's directory: -1 without a notifier.
  int Watch(const std::string& directory);
  void Unwatch(int watch);
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
  // The waits a change concerns.
  std::vector<uint32_t> Concerned(const Change& change) const;

  void OnChange(const Change& change) override;
  void OnNotifierClosed() override;
  static void OnTimer(uv_timer_t* timer);
  static void OnTeardown(napi_async_cleanup_hook_handle handle, void* self);
  void MaybeFinishTeardown();

  napi_env env_;
  FileTable* files_;
  Notifier* notifier_;
  uv_loop_t* loop_ = nullptr;
  napi_async_cleanup_hook_handle cleanup_handle_ = nullptr;
  std::unordered_map<uint32_t, Wait*> waits_;
  uint32_t next_id_ = 1;
  bool tearing_down_ = false;
  int closing_handles_ = 0;
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
  wait->prompt_json = std::move(prompt_json);
  wait->request.shared = shared;
  wait->request.prompt_json = claims ? &wait->prompt_json : nullptr;
  wait->request.pid = static_cast<uint32_t>(pid);
  wait->callback = Napi::Persistent(info[6].As<Napi::Function>());
  napi_async_init(env, nullptr, Napi::String::New(env, "LoopLockWait"),
                  &wait->async_context);
  uv_timer_init(loop_, &wait->timer);
  wait->timer.data = wait;
  wait->watch = Watch(wait->directory);
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
  const Status status = TryOnce(file, &wait->request, wake, &found);
  if (!status.ok()) return Fail(wait, status);
  if (found != Found::kHeld) return Report(wait, found, wait->request.started_ms);
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
  Unwatch(wait->watch);
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

void WaitManager::OnChange(const Change& change) {
  // Attempt() may finish waits and run JavaScript, which may cancel or
  // start others: look each one up again.
  for (uint32_t id : Concerned(change)) {
    auto it = waits_.find(id);
    if (it != waits_.end()) Attempt(it->second, WakeOf(change));
  }
  if ((change.kinds & kWatchDropped) == 0) return;
  // The directory is gone and the kernel dropped the watch; waits still on
  // it were just told their file is stale.
  for (const auto& [id, wait] : waits_) {
    if (wait->watch == change.watch) Unwatch(wait->watch), wait->watch = -1;
  }
}

std::vector<uint32_t> WaitManager::Concerned(const Change& change) const {
  std::vector<uint32_t> ids;
  for (const auto& [id, wait] : waits_) {
    if (Concerns(change, wait->watch, wait->name)) ids.push_back(id);
  }
  return ids;
}

int WaitManager::Watch(const std::string& directory) { return WatchFor(notifier_, directory); }

void WaitManager::Unwatch(int watch) { UnwatchFor(notifier_, watch); }

void WaitManager::OnTeardown(napi_async_cleanup_hook_handle handle, void* self) {
  auto* manager = static_cast<WaitManager*>(self);
  manager->tearing_down_ = true;
  while (!manager->waits_.empty()) manager->Cancel(manager->waits_.begin()->first);
  // The last to let go of the notifier waits for it to close.
  if (manager->notifier_ != nullptr && manager->notifier_->Release(manager)) {
    ++manager->closing_handles_;
  }
  manager->notifier_ = nullptr;
  (void)handle;
  manager->MaybeFinishTeardown();
}

void WaitManager::OnNotifierClosed() {
  --closing_handles_;
  MaybeFinishTeardown();
}

void WaitManager::MaybeFinishTeardown() {
  if (!tearing_down_ || closing_handles_ > 0) return;
  napi_remove_async_cleanup_hook(cleanup_handle_);
  delete this;
}

}  // namespace

void InitWaiter(Napi::Env env, Napi::Object exports, FileTable* files, Notifier* notifier) {
  auto* manager = new WaitManager(env, files, notifier);
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
                    return LockBlocking(info, manager->files(), manager->notifier());
                  },
                  "lockBlocking", manager));
}

void InitBlockingWait(Napi::Env env, Napi::Object exports, FileTable* files) {
  exports.Set("lockBlocking", Napi::Function::New(
                                  env,
                                  [](const Napi::CallbackInfo& info) {
                                    auto* files = static_cast<FileTable*>(info.Data());
                                    return LockBlocking(info, files, nullptr);
                                  },
                                  "lockBlocking", files));
}

}  // namespace loop_lock
