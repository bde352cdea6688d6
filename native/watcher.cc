#include "watcher.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "arguments.h"
#include "delivery.h"

namespace loop_lock {
namespace {

// What each role asks the notifier for; a directory's own removal or move
// comes to every watch. What a kernel watch is asked for only grows while it
// lives (see Notifier::AddWatch), so a directory that is one watch's lock
// directory and another's ancestor (or a wait's directory) gets more than
// each asked for: the kinds and names kept per watch filter it.
constexpr uint32_t kFileKinds =
    kEntryOpened | kEntryWritten | kEntryClosedWriter | kEntryClosedReader;

uint32_t KindsOf(WatchRole role) {
  switch (role) {
    case WatchRole::kAncestor:
      return 0;
    case WatchRole::kParent:
      return kEntryNamed;
    case WatchRole::kLockDir:
      return kEntryNamed | kFileKinds;
  }
  return 0;
}

struct Directory {
  int wd;
  WatchRole role;
  std::string name;
};

class WatchManager;

struct Watch {
  uint32_t id;
  std::vector<Directory> directories;
  uint32_t pending = 0;  // WatchEvent bits not yet reported
  bool persistent = true;  // keeps the event loop alive (see UpdateLiveness)
  napi_ref callback = nullptr;
  napi_async_context context = nullptr;
};

// What one change means to a watch that has `directory` among its own.
uint32_t EventBits(const Directory& directory, const Change& change) {
  if ((change.kinds & (kDirectoryGone | kWatchDropped)) != 0) return kPathChanged;
  const uint32_t kinds = change.kinds & KindsOf(directory.role);
  if (kinds == 0 || change.name.empty() || directory.name != change.name) return 0;
  if (directory.role != WatchRole::kLockDir) return kPathChanged;
  if ((kinds & kEntryNamed) != 0) return kLockFileNamed;
  uint32_t bits = 0;
  if ((kinds & kEntryWritten) != 0) bits |= kLockFileWritten;
  if ((kinds & (kEntryClosedWriter | kEntryClosedReader)) != 0) bits |= kLockFileClosed;
  if ((kinds & kEntryClosedWriter) != 0) bits |= kWriterClosed;
  if ((kinds & kEntryOpened) != 0) bits |= kLockFileOpened;
  return bits;
}

// The watches of one environment, told by the environment's notifier (see
// notifier.h), which they share with its waits.
class WatchManager final : private Notifier::Client {
 public:
  WatchManager(napi_env env, Notifier* notifier) : env_(env), notifier_(notifier) {
    if (napi_add_async_cleanup_hook(env, OnTeardown, this, &cleanup_handle_) != napi_ok) {
      cleanup_handle_ = nullptr;
    }
    notifier_->Attach(this);
  }

  napi_value Start(napi_env env, napi_value directories, napi_value roles, napi_value names,
                   napi_value callback, bool persistent);
  void Stop(uint32_t id);

 private:
  void Dispose(Watch* watch);
  void Abandon(Watch* watch);
  void Deliver(uint32_t id);
  // A live persistent watch keeps the process alive, as fs.watch() does;
  // one made with persistent: false does not.
  void UpdateLiveness();
  void OnChange(const Change& change) override;
  void OnChangesTold() override;
  void OnNotifierClosed() override;
  static void OnTeardown(napi_async_cleanup_hook_handle handle, void* self);
  void MaybeFinishTeardown();

  napi_env env_;
  Notifier* notifier_;
  napi_async_cleanup_hook_handle cleanup_handle_ = nullptr;
  std::unordered_map<uint32_t, Watch*> watches_;
  uint32_t next_id_ = 1;
  bool tearing_down_ = false;
  bool closing_notifier_ = false;
  // Watches with changes told but not yet called back (see OnChangesTold).
  std::vector<uint32_t> touched_;
};

bool StringAt(napi_env env, napi_value array, uint32_t index, std::string* out) {
  napi_value value;
  size_t length = 0;
  if (napi_get_element(env, array, index, &value) != napi_ok ||
      napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) {
    return false;
  }
  out->resize(length);
  return napi_get_value_string_utf8(env, value, out->data(), length + 1, &length) == napi_ok;
}

// watchPaths(directories, roles, names, callback, persistent): id, or null
// once torn down; fails as every call does (ThrowFailure) when it
// cannot watch
napi_value WatchManager::Start(napi_env env, napi_value directories, napi_value roles,
                               napi_value names, napi_value callback, bool persistent) {
  napi_value null_value;
  napi_get_null(env, &null_value);
  if (tearing_down_) return null_value;
  uint32_t count = 0;
  if (napi_get_array_length(env, directories, &count) != napi_ok) return null_value;
  auto* watch = new Watch();
  watch->persistent = persistent;
  for (uint32_t i = 0; i < count; ++i) {
    std::string path;
    std::string name;
    napi_value role_value;
    int32_t role = 0;
    if (!StringAt(env, directories, i, &path) || !StringAt(env, names, i, &name) ||
        napi_get_element(env, roles, i, &role_value) != napi_ok ||
        napi_get_value_int32(env, role_value, &role) != napi_ok || role < 0 ||
        role > static_cast<int32_t>(WatchRole::kLockDir)) {
      Abandon(watch);
      napi_throw_type_error(env, nullptr,
                            "directories and names must hold strings, roles WatchRole numbers");
      return nullptr;
    }
    const auto watch_role = static_cast<WatchRole>(role);
    int wd = -1;
    const Status status = notifier_->AddWatch(path, KindsOf(watch_role), &wd);
    if (!status.ok()) {
      Abandon(watch);
      ThrowFailure(env, status);
      return nullptr;
    }
    watch->directories.push_back(Directory{wd, watch_role, std::move(name)});
  }
  napi_value resource_name;
  if (napi_create_reference(env, callback, 1, &watch->callback) != napi_ok ||
      napi_create_string_utf8(env, "LoopLockWatch", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, nullptr, resource_name, &watch->context) != napi_ok) {
    Abandon(watch);
    return null_value;
  }
  do {
    watch->id = next_id_++;
  } while (watch->id == 0 || watches_.count(watch->id) != 0);
  watches_.emplace(watch->id, watch);
  UpdateLiveness();
  napi_value id;
  napi_create_uint32(env, watch->id, &id);
  return id;
}

void WatchManager::Stop(uint32_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Watch* watch = it->second;
  watches_.erase(it);
  Dispose(watch);
  UpdateLiveness();
}

void WatchManager::Dispose(Watch* watch) {
  for (const Directory& directory : watch->directories) notifier_->RemoveWatch(directory.wd);
  if (watch->callback != nullptr) napi_delete_reference(env_, watch->callback);
  if (watch->context != nullptr) napi_async_destroy(env_, watch->context);
  delete watch;
}

// A watch that could not start: with no other watch, the descriptor it
// may have opened closes now rather than when the process exits.
void WatchManager::Abandon(Watch* watch) {
  Dispose(watch);
  notifier_->CloseIfUnused();
}

void WatchManager::UpdateLiveness() {
  bool alive = false;
  for (const auto& [id, watch] : watches_) alive = alive || watch->persistent;
  notifier_->KeepLoopAlive(alive);
}

void WatchManager::OnNotifierClosed() {
  closing_notifier_ = false;
  MaybeFinishTeardown();
}

// Changes are gathered until the notifier has told all it read, so a burst
// (a holder's open, writes and close) becomes one callback per watch.
void WatchManager::OnChange(const Change& change) {
  const bool lost = (change.kinds & kChangesLost) != 0;
  for (const auto& [id, watch] : watches_) {
    uint32_t bits = 0;
    if (lost) {
      bits = kLockFileWritten | kLockFileClosed | kLockFileOpened | kLockFileNamed |
             kPathChanged | kWriterClosed;
    } else {
      for (const Directory& directory : watch->directories) {
        if (directory.wd == change.watch) bits |= EventBits(directory, change);
      }
    }
    if (bits == 0) continue;
    if (watch->pending == 0) touched_.push_back(id);
    watch->pending |= bits;
  }
}

void WatchManager::OnChangesTold() {
  std::vector<uint32_t> touched;
  touched.swap(touched_);
  for (uint32_t id : touched) Deliver(id);
}

// Calls a watch back as Node calls back from I/O (see CallBack): what the
// callback (lib/watch.ts) lets escape goes to the host's uncaught path, and
// nothing is delivered once the environment can no longer run JavaScript.
void WatchManager::Deliver(uint32_t id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Watch* watch = it->second;
  const uint32_t bits = watch->pending;
  watch->pending = 0;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
  napi_value callback;
  napi_value argument;
  if (napi_get_reference_value(env_, watch->callback, &callback) == napi_ok &&
      callback != nullptr && napi_create_uint32(env_, bits, &argument) == napi_ok) {
    CallBack(env_, watch->context, callback, 1, &argument);
  }
  napi_close_handle_scope(env_, scope);
}

void WatchManager::OnTeardown(napi_async_cleanup_hook_handle handle, void* self) {
  auto* manager = static_cast<WatchManager*>(self);
  (void)handle;
  manager->tearing_down_ = true;
  for (auto& [id, watch] : manager->watches_) manager->Dispose(watch);
  manager->watches_.clear();
  // The last to let go of the notifier waits for it to close.
  manager->closing_notifier_ = manager->notifier_->Release(manager);
  manager->MaybeFinishTeardown();
}

void WatchManager::MaybeFinishTeardown() {
  if (!tearing_down_ || closing_notifier_) return;
  if (cleanup_handle_ != nullptr) napi_remove_async_cleanup_hook(cleanup_handle_);
  delete this;
}

// watchPaths(directories, roles, names, callback[, persistent]): three
// arrays of one length (strings, role numbers, strings), a function and a
// boolean (anything else counts as true), or a TypeError.
napi_value WatchPaths(napi_env env, napi_callback_info callback_info) {
  Napi::CallbackInfo info(env, callback_info);
  const char* names[] = {"directories", "roles", "names"};
  uint32_t length = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (!info[i].IsArray()) return ThrowArgument(info, false, names[i], "an array"), nullptr;
    if (i == 0) length = info[i].As<Napi::Array>().Length();
    if (info[i].As<Napi::Array>().Length() != length) {
      return ThrowArgument(info, true, names[i], "as long as directories"), nullptr;
    }
  }
  if (!info[3].IsFunction()) return ThrowArgument(info, false, "callback", "a function"), nullptr;
  const bool persistent = !info[4].IsBoolean() || info[4].As<Napi::Boolean>().Value();
  return static_cast<WatchManager*>(info.Data())
      ->Start(env, info[0], info[1], info[2], info[3], persistent);
}

napi_value UnwatchPaths(napi_env env, napi_callback_info callback_info) {
  Napi::CallbackInfo info(env, callback_info);
  double id = 0;
  if (!NumberArg(info, 0, "id", &id)) return nullptr;
  if (id >= 1 && id <= UINT32_MAX) {
    static_cast<WatchManager*>(info.Data())->Stop(static_cast<uint32_t>(id));
  }
  return nullptr;
}

// Without a notifier: null, and lib/watch.ts polls.
napi_value NoWatchPaths(napi_env env, napi_callback_info) {
  napi_value null_value;
  napi_get_null(env, &null_value);
  return null_value;
}

napi_value NoUnwatchPaths(napi_env, napi_callback_info) { return nullptr; }

}  // namespace

void InitWatcher(Napi::Env env, Napi::Object exports, Notifier* notifier) {
  void* manager = nullptr;
  napi_callback watch_paths = NoWatchPaths;
  napi_callback unwatch_paths = NoUnwatchPaths;
  if (notifier != nullptr) {
    manager = new WatchManager(env, notifier);
    watch_paths = WatchPaths;
    unwatch_paths = UnwatchPaths;
  }
  napi_value watch;
  napi_value unwatch;
  if (napi_create_function(env, "watchPaths", NAPI_AUTO_LENGTH, watch_paths, manager, &watch) ==
          napi_ok &&
      napi_create_function(env, "unwatchPaths", NAPI_AUTO_LENGTH, unwatch_paths, manager,
                           &unwatch) == napi_ok) {
    exports.Set("watchPaths", watch);
    exports.Set("unwatchPaths", unwatch);
  }
}

}  // namespace loop_lock
