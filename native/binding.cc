// The N-API surface: thin wrappers that unpack arguments (see arguments.h),
// call the lock core and turn a failed Status into an Error carrying errno
// and syscall. Naming the errno (EACCES, ELOOP, ...) and attaching the path
// happen once, in lib/errors.ts, so this file never formats a message of
// its own.
#include <napi.h>
#include <uv.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "arguments.h"
#include "delivery.h"
#include "lock_core.h"
#include "file_table.h"
#include "lock_file.h"
#include "lock_owner.h"
#include "notifier.h"
#include "process.h"
#include "record.h"
#include "waiter.h"
#include "watcher.h"

namespace loop_lock {
namespace {

// The largest read a caller may ask for: lib/ asks for MAX_METADATA_BYTES
// (1 MiB), the largest record. Any more would only let a wrong size read a
// large file whole, and twice, since reads must agree.
constexpr uint64_t kMaxReadBytes = 1 << 20;

// How long attempt() tries again while only probes refuse the lock (see
// LockFile::Attempt): longer than a probe holds its shared lock unless its
// process is preempted in between, and then a time slice, a few ms.
constexpr int64_t kProbePatienceMs = 10;

// The largest integer a JavaScript number holds exactly: Date.now() stays
// below it for 285,000 years.
constexpr uint64_t kMaxSafeInteger = (1ULL << 53) - 1;

Napi::Value ThrowStatus(Napi::Env env, const Status& status) {
  ThrowFailure(env, status);
  return env.Undefined();
}

// What JavaScript gets from a call into the lock core: what `value()` makes
// when `status` says it succeeded, else the failure, thrown. `value` runs
// only on success, so it may read what the call filled in.
template <typename MakeValue>
Napi::Value Reply(Napi::Env env, const Status& status, MakeValue value) {
  if (!status.ok()) return ThrowStatus(env, status);
  return value();
}

// What read() returns for a record's bytes: the text, or one failure shape
// for bytes that cannot be a record: EFBIG when larger than max_bytes,
// EILSEQ when not UTF-8 (named by the read that returned them).
Napi::Value RecordValue(Napi::Env env, const std::string& bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes) return ThrowStatus(env, Status{-UV_EFBIG, "read"});
  if (!IsValidUtf8(bytes.data(), bytes.size())) return ThrowStatus(env, Status{-UV_EILSEQ, "read"});
  return Napi::String::New(env, bytes.data(), bytes.size());
}

// resolveOptions (lib/options.ts) refuses a path with a NUL byte; this
// keeps one from silently cutting the C string short if it ever got through.
bool IsUsablePath(const char* path, size_t length) {
  return length > 0 && std::memchr(path, '\0', length) == nullptr;
}

FileTable* FilesOf(const Napi::CallbackInfo& info) {
  return static_cast<FileTable*>(info.Data());
}

// The open LockFile args[0] names, or nullptr with an exception pending (see FileArg).
LockFile* OpenFileArg(const Napi::CallbackInfo& info) {
  return FileArg(info, FilesOf(info));
}

// maxBytes, the size bound of read() and probe().
bool MaxBytesArg(const Napi::CallbackInfo& info, size_t index, size_t* out) {
  uint64_t value = 0;
  if (!IntegerArg(info, index, "maxBytes", kMaxReadBytes, &value)) return false;
  *out = static_cast<size_t>(value);
  return true;
}

// open(path, create): Handle
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  bool create = false;
  if (!StringArg(info, 0, "path", &path) || !BoolArg(info, 1, "create", &create)) {
    return env.Undefined();
  }
  if (!IsUsablePath(path.data(), path.size())) return ThrowStatus(env, Status{-UV_EINVAL, "open"});
  const OpenMode mode = create ? OpenMode::kCreate : OpenMode::kReadOnly;
  FileHandle handle;
  FileId id;
  const Status status = OpenLockFile(path.c_str(), mode, &handle, &id);
  return Reply(env, status, [&] {
    return Napi::Number::New(env, FilesOf(info)->Add(handle, std::move(path), id));
  });
}

// tryLock(handle, shared): boolean, false when another holder conflicts
Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  bool shared = false;
  if (file == nullptr || !BoolArg(info, 1, "shared", &shared)) return info.Env().Undefined();
  bool locked = false;
  const Status status = TryLock(file->handle(), shared, &locked);
  if (locked) file->MarkLocked();
  return Reply(info.Env(), status, [&] { return Napi::Boolean::New(info.Env(), locked); });
}

// claim(handle, pid, promptJson[, mark]): the record's time (ms since the epoch)
// once written, or null when the file was removed or replaced since it was
// opened (see LockFile::Claim)
Napi::Value ClaimFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LockFile* file = OpenFileArg(info);
  uint64_t pid = 0;
  std::string prompt_json;
  bool mark = true;
  if (file == nullptr ||
      !IntegerArg(info, 1, "pid", UINT32_MAX, &pid) ||
      !StringArg(info, 2, "promptJson", &prompt_json) ||
      (info.Length() > 3 && !BoolArg(info, 3, "mark", &mark))) {
    return env.Undefined();
  }
  bool claimed = false;
  int64_t started_ms = 0;
  const Status status =
      file->Claim(static_cast<uint32_t>(pid), prompt_json, mark, &claimed, &started_ms);
  return Reply(env, status, [&]() -> Napi::Value {
    if (!claimed) return env.Null();
    return Napi::Number::New(env, static_cast<double>(started_ms));
  });
}

// pid, promptJson and started from info[index] on: the record an attempt
// writes. A null promptJson, where `optional`, asks for none (a FileLock).
bool RecordArgs(const Napi::CallbackInfo& info, size_t index, bool optional,
                std::string* prompt_json, LockRequest* request) {
  uint64_t pid = 0;
  uint64_t started_ms = 0;
  const bool none = optional && info[index + 1].IsNull();
  if (!IntegerArg(info, index, "pid", UINT32_MAX, &pid) ||
      (!none && !StringArg(info, index + 1, "promptJson", prompt_json)) ||
      !IntegerArg(info, index + 2, "started", kMaxSafeInteger, &started_ms)) {
    return false;
  }
  request->prompt_json = none ? nullptr : prompt_json;
  request->pid = static_cast<uint32_t>(pid);
  request->started_ms = static_cast<int64_t>(started_ms);
  return true;
}

// What a call that found the lock held returns (attempt(), inspect()): the
// record, read through the handle in the same crossing, with the handle
// and the mark left in `found` (see FileTable::found). A file that carries
// a mark is closed here (0): the mark's pid settles who holds it. Any
// other stays open for heldBy(). When the record is no text to return (a
// failed read, a file larger than any record or not UTF-8), `unread`: the
// handle, for the caller's read() to report why, as it always did.
Napi::Value HeldRecord(Napi::Env env, FileTable* files, uint32_t file_id, double unread) {
  double* found = files->found();
  LockFile* file = files->Find(file_id);
  std::string bytes;
  if (found == nullptr || !ReadRecord(file->handle(), kMaxReadBytes, &bytes).ok() ||
      bytes.size() > kMaxReadBytes || !IsValidUtf8(bytes.data(), bytes.size())) {
    return Napi::Number::New(env, unread);
  }
  const int64_t marked = MarkedPid(file->handle());
  if (marked > kNoMark) files->Close(file_id);
  found[0] = marked > kNoMark ? 0 : file_id;
  found[1] = static_cast<double>(marked);
  return Napi::String::New(env, bytes.data(), bytes.size());
}

// What attempt() and attemptOn() found, in one number (see AttemptLock).
double SignedHandle(uint32_t file_id, Found found) {
  if (found == Found::kStale) return 0;
  return found == Found::kHeld ? -static_cast<double>(file_id) : file_id;
}

// attempt(path, pid, promptJson, started): one attempt at the lock in one
// call (see LockFile::Attempt): opens the path (creating the file), locks,
// claims with the record stamped `started` (ms since the epoch). Returns
// the handle when it holds the lock; 0 when the file at the path is no
// longer the one locked (stale: closed, to reopen); when another holder
// has it, its record and `found` as HeldRecord leaves them, or the handle
// negated when the record is no text (open, unlocked, for reading why).
// A number or a string, not an array: building one through N-API costs
// more than three more calls into the addon.
Napi::Value AttemptLock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, prompt_json;
  LockRequest request;
  request.patience_ms = kProbePatienceMs;
  if (!StringArg(info, 0, "path", &path) || !RecordArgs(info, 1, false, &prompt_json, &request)) {
    return env.Undefined();
  }
  if (!IsUsablePath(path.data(), path.size())) return ThrowStatus(env, Status{-UV_EINVAL, "open"});
  FileHandle handle;
  FileId id;
  Status status = OpenLockFile(path.c_str(), OpenMode::kCreate, &handle, &id);
  if (!status.ok()) return ThrowStatus(env, status);
  FileTable* files = FilesOf(info);
  const uint32_t file_id = files->Add(handle, std::move(path), id);
  Found found = Found::kHeld;
  status = files->Find(file_id)->Attempt(&request, &found);
  if (!status.ok() || found == Found::kStale) files->Close(file_id);
  if (!status.ok()) return ThrowStatus(env, status);
  if (found == Found::kHeld) return HeldRecord(env, files, file_id, -static_cast<double>(file_id));
  return Napi::Number::New(env, SignedHandle(file_id, found));
}

// attemptOn(handle, pid, promptJson, started[, shared]): attempt() on a
// handle already open, for the try that precedes a wait and each try of
// the poll (lib/poll-wait.ts): locks (LOCK_SH when `shared`), claims unless
// promptJson is null (no record: a FileLock), and when refused checks that
// the path still names the file. Returns as attempt() does, but the handle
// stays open whatever the outcome: its caller owns it.
Napi::Value AttemptOn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LockFile* file = OpenFileArg(info);
  std::string prompt_json;
  LockRequest request;
  request.check_path = true;
  if (file == nullptr || !RecordArgs(info, 1, true, &prompt_json, &request) ||
      (info.Length() > 4 && !BoolArg(info, 4, "shared", &request.shared))) {
    return env.Undefined();
  }
  Found found = Found::kHeld;
  const Status status = file->Attempt(&request, &found);
  return Reply(env, status, [&] {
    return Napi::Number::New(env, SignedHandle(info[0].As<Napi::Number>().Uint32Value(), found));
  });
}

// read(handle, maxBytes): string; fails with EFBIG when the file is larger
// than maxBytes, EILSEQ when its bytes are not UTF-8 (see RecordValue).
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LockFile* file = OpenFileArg(info);
  size_t max_bytes = 0;
  if (file == nullptr || !MaxBytesArg(info, 1, &max_bytes)) return env.Undefined();
  std::string bytes;
  const Status status = ReadRecord(file->handle(), max_bytes, &bytes);
  return Reply(env, status, [&] { return RecordValue(env, bytes, max_bytes); });
}

// probe(path): whether someone holds the lock (false when there is no lock
// file: nobody can). The descriptor lives only within this call, so it needs no
// handle: isLocked() costs one crossing into the addon and no allocation.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Copied into a stack buffer, not a std::string: probes run in loops,
  // and the heap allocation was a tenth of what the addon adds to open(),
  // flock() and close(). Opening refuses paths of kMaxPathBytes bytes or more
  // (ENAMETOOLONG), so any path that fits is whole here: the copy stops
  // short of a UTF-8 sequence that would not fit, at most 3 bytes early,
  // and a path cut that way still has at least kMaxPathBytes bytes.
  char path[kMaxPathBytes + 4];
  size_t length = 0;
  if (!StringArgInto(info, 0, "path", path, sizeof path, &length)) return env.Undefined();
  if (!IsUsablePath(path, length)) return ThrowStatus(env, Status{-UV_EINVAL, "open"});
  if (length >= kMaxPathBytes) return ThrowStatus(env, Status{-UV_ENAMETOOLONG, "open"});
  FileHandle file;
  FileId id;
  Status status = OpenLockFile(path, OpenMode::kReadOnly, &file, &id);
  if (status.error == -UV_ENOENT) return Napi::Boolean::New(env, false);
  if (!status.ok()) return ThrowStatus(env, status);
  bool free = false;
  status = TryLock(file, true, &free);
  // Closed without flock(LOCK_UN): the close drops the shared lock. The
  // kernel signals the close to inotify (IN_CLOSE_NOWRITE, which wakes
  // waiters) before it drops the descriptor's locks, so a waiter refused
  // by this probe alone could, in principle, retry in between and wait for
  // its next backoff tick (1 ms); on Linux 6.18 none of 40,000 waiters
  // woken that way, spinning on inotify, found the lock still held.
  // Holders do unlock first (see Release): theirs is the close a waiter
  // waits for.
  Release(file, false);
  return Reply(env, status, [&] { return Napi::Boolean::New(env, !free); });
}

// inspect(path): the probe of status(), reading on when the lock is held:
// the record and `found`, as HeldRecord leaves them (or the handle, open on
// the file found held, when the record is no text); 0 when nobody holds
// the lock or there is no lock file.
Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  if (!IsUsablePath(path.data(), path.size())) return ThrowStatus(env, Status{-UV_EINVAL, "open"});
  FileHandle handle;
  FileId id;
  Status status = OpenLockFile(path.c_str(), OpenMode::kReadOnly, &handle, &id);
  if (status.error == -UV_ENOENT) return Napi::Number::New(env, 0);
  if (!status.ok()) return ThrowStatus(env, status);
  bool free = false;
  status = TryLock(handle, true, &free);
  if (!status.ok() || free) {
    Release(handle, false);  // without flock(LOCK_UN), as Probe does
    return Reply(env, status, [&] { return Napi::Number::New(env, 0); });
  }
  FileTable* files = FilesOf(info);
  const uint32_t file_id = files->Add(handle, std::move(path), id);
  return HeldRecord(env, files, file_id, file_id);
}

// heldBy(handle, pid, started[, mayBeMarked[, close]]): whether pid holds
// the lock on the handle's inode, as far as the system can tell, for a
// record stamped `started` (ms since the epoch; see HoldsLock); then closes
// the handle when `close` says so, saving its caller a call.
Napi::Value HeldBy(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  uint64_t pid = 0;
  double started = 0;
  bool may_be_marked = true;
  bool close = false;
  if (file == nullptr || !IntegerArg(info, 1, "pid", UINT32_MAX, &pid) ||
      !NumberArg(info, 2, "started", &started) ||
      (info.Length() > 3 && !BoolArg(info, 3, "mayBeMarked", &may_be_marked)) ||
      (info.Length() > 4 && !BoolArg(info, 4, "close", &close))) {
    return info.Env().Undefined();
  }
  // Any Date's time is within 8.64e15 ms of the epoch.
  if (!(std::fabs(started) <= 8.64e15)) {
    ThrowArgument(info, true, "started", "a time in ms within 8.64e15 of the epoch");
    return info.Env().Undefined();
  }
  const bool held = HoldsLock(file->handle(), file->id(), static_cast<int64_t>(pid),
                              static_cast<int64_t>(started), may_be_marked);
  if (close) FilesOf(info)->Close(info[0].As<Napi::Number>().Uint32Value());
  return Napi::Boolean::New(info.Env(), held);
}

// unlock(handle): void; drops the handle's lock and keeps it open, for a
// watch's probe (lib/watch.ts), whose close would be an inotify event for
// every watcher.
Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  if (file != nullptr) Unlock(file->handle());
  return info.Env().Undefined();
}

// identity(handle): 0 same, 1 removed, 2 replaced, 3 linked (see Identity)
Napi::Value CheckFileIdentity(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  if (file == nullptr) return info.Env().Undefined();
  Identity identity = Identity::kSame;
  long long size = -1;
  const Status status = file->Identify(&identity, &size);
  return Reply(info.Env(), status,
               [&] { return Napi::Number::New(info.Env(), static_cast<int>(identity)); });
}

// fileKey(handle): "dev:ino", naming the inode for same-thread deadlock checks
Napi::Value FileKey(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  if (file == nullptr) return info.Env().Undefined();
  return Napi::String::New(info.Env(), std::to_string(file->id().dev) + ":" +
                                           std::to_string(file->id().ino));
}

#ifdef LOOP_LOCK_TEST_EXPORTS
// formatTimestamp(ms): the time as records hold it, for tests to hold it to
// Date#toISOString. Only in a test build (`npm test` defines the macro), so
// the shipped addon exports nothing lib/ does not call.
Napi::Value FormatTimestamp(const Napi::CallbackInfo& info) {
  // Any number: outside int64 it saturates, as the tests of the far ends want.
  int64_t ms = 0;
  if (napi_get_value_int64(info.Env(), info[0], &ms) != napi_ok) {
    ThrowArgument(info, false, "ms", "a number");
    return info.Env().Undefined();
  }
  std::string text;
  AppendTimestamp(ms, &text);
  return Napi::String::New(info.Env(), text);
}
#endif

// filesystem(handle): the statfs magic number (Linux) or type name (macOS)
Napi::Value Filesystem(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  if (file == nullptr) return info.Env().Undefined();
  FilesystemId id;
  const Status status = FilesystemOf(file->handle(), file->path().c_str(), &id);
  return Reply(info.Env(), status, [&]() -> Napi::Value {
    if (!id.name.empty()) return Napi::String::New(info.Env(), id.name);
    return Napi::Number::New(info.Env(), static_cast<double>(id.magic));
  });
}

// killChildrenOnExit(): void; see KillChildrenOnExit (ENOTSUP on POSIX)
Napi::Value KillChildren(const Napi::CallbackInfo& info) {
  const Status status = KillChildrenOnExit();
  return Reply(info.Env(), status, [&] { return info.Env().Undefined(); });
}

// descriptor(handle): number; see InheritableDescriptor (ENOTSUP on Windows)
Napi::Value Descriptor(const Napi::CallbackInfo& info) {
  LockFile* file = OpenFileArg(info);
  if (file == nullptr) return info.Env().Undefined();
  int descriptor = -1;
  const Status status = InheritableDescriptor(file->handle(), &descriptor);
  return Reply(info.Env(), status, [&] { return Napi::Number::New(info.Env(), descriptor); });
}

// close(handle): void, idempotent; unlocks, then closes
Napi::Value Close(const Napi::CallbackInfo& info) {
  uint32_t id = 0;
  if (HandleArg(info, &id)) FilesOf(info)->Close(id);
  return info.Env().Undefined();
}

// Whether this is Node.js, not a runtime that loads Node-API addons but
// emulates only part of libuv and of Node's environment teardown: Bun has no
// uv_poll (a wait aborts the process), and Deno frees an async cleanup hook's
// handle itself after the hook returns, so the hook's own
// napi_remove_async_cleanup_hook, which Node requires, frees it twice. Under
// those the addon leaves the event-loop waiter and watcher out: acquire()
// waits from JavaScript (lib/poll-wait.ts), acquireBlocking() by the backoff
// poll alone, and watch() polls (lib/watch.ts).
bool RunsOnNode(Napi::Env env) {
  Napi::Value process = env.Global().Get("process").UnwrapOr(env.Undefined());
  if (!process.IsObject()) return false;
  Napi::Value versions = process.As<Napi::Object>().Get("versions").UnwrapOr(env.Undefined());
  if (!versions.IsObject()) return false;
  const Napi::Object names = versions.As<Napi::Object>();
  return !names.Has("bun").UnwrapOr(true) && !names.Has("deno").UnwrapOr(true);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PrepareHoldsLock();
  auto* files = new FileTable(env);
  napi_set_instance_data(
      env, files, [](napi_env, void* data, void*) { delete static_cast<FileTable*>(data); },
      nullptr);
  exports.Set("open", Napi::Function::New(env, Open, "open", files));
  exports.Set("tryLock", Napi::Function::New(env, TryLockFile, "tryLock", files));
  exports.Set("attempt", Napi::Function::New(env, AttemptLock, "attempt", files));
  exports.Set("attemptOn", Napi::Function::New(env, AttemptOn, "attemptOn", files));
  exports.Set("claim", Napi::Function::New(env, ClaimFile, "claim", files));
  exports.Set("read", Napi::Function::New(env, Read, "read", files));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe", files));
  exports.Set("inspect", Napi::Function::New(env, Inspect, "inspect", files));
  exports.Set("heldBy", Napi::Function::New(env, HeldBy, "heldBy", files));
  exports.Set("unlock", Napi::Function::New(env, UnlockFile, "unlock", files));
  exports.Set("identity", Napi::Function::New(env, CheckFileIdentity, "identity", files));
  exports.Set("fileKey", Napi::Function::New(env, FileKey, "fileKey", files));
  exports.Set("filesystem", Napi::Function::New(env, Filesystem, "filesystem", files));
  exports.Set("close", Napi::Function::New(env, Close, "close", files));
  if (napi_value found = files->FoundArray()) exports.Set("found", Napi::Value(env, found));
  exports.Set("killChildrenOnExit", Napi::Function::New(env, KillChildren, "killChildrenOnExit"));
  exports.Set("descriptor", Napi::Function::New(env, Descriptor, "descriptor", files));
#ifdef LOOP_LOCK_TEST_EXPORTS
  exports.Set("formatTimestamp", Napi::Function::New(env, FormatTimestamp, "formatTimestamp"));
#endif
  if (RunsOnNode(env)) {
    // One notifier, owned by both (each lets go of it at teardown).
    Notifier* notifier = Notifier::Create(env, 2);
    InitWaiter(env, exports, files, notifier);
    InitWatcher(env, exports, notifier);
  } else {
    InitBlockingWait(env, exports, files);
  }
  return exports;
}

}  // namespace
}  // namespace loop_lock

static Napi::Object InitLoopLock(Napi::Env env, Napi::Object exports) {
  return loop_lock::Init(env, exports);
}

NODE_API_MODULE(loop_lock, InitLoopLock)
