// lockBlocking: waiting for a lock in the calling thread.
#include <string>

#include "arguments.h"
#include "delivery.h"
#include "wait_step.h"

namespace loop_lock {
namespace {

// Blocks for up to delay_ms, or until the directory watched by `watch`
// reports a change to `name`: then the next try comes at once, with a path
// check if it was a rename. The environment's pending acquire() calls lose
// nothing the notifier read here: it tells them as soon as the event loop
// runs again.
Wake Sleep(Notifier* notifier, int watch, const std::string& name, uint64_t delay_ms) {
  if (notifier == nullptr) {
    SleepMs(delay_ms);
    return Wake::kTimer;
  }
  Wake wake = Wake::kTimer;
  notifier->Block(watch, delay_ms, [&](const Change& change) {
    if (Concerns(change, watch, name)) wake = std::max(wake, WakeOf(change));
  });
  return wake;
}

// Tries until the lock is taken, the file is stale, or the environment can
// no longer run JavaScript (*found is still kHeld).
Status WaitHere(napi_env env, LockFile* file, LockRequest* request, Notifier* notifier,
                const std::string& directory, const std::string& name, Found* found) {
  Status status = TryOnce(file, request, Wake::kClosed, found);
  if (!status.ok() || *found != Found::kHeld) return status;
  // In place before the next try, so a release in between is not lost.
  const int watch = WatchFor(notifier, directory);
  Wake wake = Wake::kClosed;
  uint64_t delay = 0;
  do {
    status = TryOnce(file, request, wake, found);
    if (!status.ok() || *found != Found::kHeld) break;
    delay = NextDelay(delay, wake);
    wake = Sleep(notifier, watch, name, delay);
  } while (CanRunJavaScript(env));
  UnwatchFor(notifier, watch);
  return status;
}

}  // namespace

// lockBlocking(handle, directory, name, shared[, pid, promptJson]): once
// flock(LOCK_SH or LOCK_EX) is held, the record's stamp (ms since the epoch)
// when it claimed for pid, Found::kLocked when promptJson is absent or null
// (no record: a FileLock); Found::kStale when the path no longer names the
// file; or nothing once the environment can no longer run JavaScript.
//
// Waits as acquire() does, on the notifier and the backoff poll, but in
// this thread: never inside flock(LOCK_EX), which nothing can interrupt
// short of a signal, so a worker blocked here would keep process.exit()
// joining it, and worker.terminate() waiting, forever. Each slice ends by
// asking whether JavaScript can still run: the only sign, from inside the
// thread, that it is being torn down.
Napi::Value LockBlocking(const Napi::CallbackInfo& info, FileTable* files, Notifier* notifier) {
  Napi::Env env = info.Env();
  LockFile* file = FileArg(info, files);
  std::string directory, name, prompt_json;
  bool shared = false;
  uint64_t pid = 0;
  const bool claims = info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined();
  if (file == nullptr || !StringArg(info, 1, "directory", &directory) ||
      !StringArg(info, 2, "name", &name) || !BoolArg(info, 3, "shared", &shared) ||
      (claims && (!IntegerArg(info, 4, "pid", UINT32_MAX, &pid) ||
                  !StringArg(info, 5, "promptJson", &prompt_json)))) {
    return env.Undefined();
  }
  LockRequest request;
  request.shared = shared;
  request.prompt_json = claims ? &prompt_json : nullptr;
  request.pid = static_cast<uint32_t>(pid);
  Found found = Found::kHeld;
  const Status status = WaitHere(env, file, &request, notifier, directory, name, &found);
  if (!status.ok()) {
    ThrowFailure(env, status);
    return env.Undefined();
  }
  if (found == Found::kLocked && claims) {
    return Napi::Number::New(env, static_cast<double>(request.started_ms));
  }
  if (found == Found::kHeld) return env.Undefined();
  return Napi::Number::New(env, static_cast<uint32_t>(found));
}

}  // namespace loop_lock
