// Arguments as the addon's functions take them from JavaScript. lib/ always
// passes the right types, but the binding is a native boundary: a string
// where a number belongs must not reach node-addon-api's As<T>(), whose
// failed conversion leaves an exception pending that a later throw turns
// into a fatal error, and a negative size must not wrap around into a huge
// one. Each reader throws a TypeError (a wrong type or a missing argument)
// or a RangeError (an integer out of range) naming the argument, and
// returns false; the caller then returns at once, with the exception
// pending. The checks are the status of the one N-API call that reads the
// value anyway, so a call with good arguments costs nothing more.
#ifndef LOOP_LOCK_ARGUMENTS_H_
#define LOOP_LOCK_ARGUMENTS_H_

#include <napi.h>
#include <uv.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "delivery.h"
#include "lock_core.h"
#include "file_table.h"

namespace loop_lock {

inline bool ThrowArgument(const Napi::CallbackInfo& info, bool range, const char* name,
                          const std::string& what) {
  const std::string message = std::string("The \"") + name + "\" argument must be " + what;
  if (range) {
    Napi::RangeError::New(info.Env(), message).ThrowAsJavaScriptException();
  } else {
    Napi::TypeError::New(info.Env(), message).ThrowAsJavaScriptException();
  }
  return false;
}

inline bool StringArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                      std::string* out) {
  size_t length = 0;
  napi_env env = info.Env();
  if (napi_get_value_string_utf8(env, info[index], nullptr, 0, &length) != napi_ok) {
    return ThrowArgument(info, false, name, "a string");
  }
  out->resize(length);
  napi_get_value_string_utf8(env, info[index], &(*out)[0], length + 1, &length);
  return true;
}

// Into a caller's buffer, for calls that avoid the heap: the text is cut to
// fit (see napi_get_value_string_utf8) and *length says how much was kept.
inline bool StringArgInto(const Napi::CallbackInfo& info, size_t index, const char* name,
                          char* buffer, size_t size, size_t* length) {
  if (napi_get_value_string_utf8(info.Env(), info[index], buffer, size, length) != napi_ok) {
    return ThrowArgument(info, false, name, "a string");
  }
  return true;
}

inline bool BoolArg(const Napi::CallbackInfo& info, size_t index, const char* name, bool* out) {
  if (napi_get_value_bool(info.Env(), info[index], out) != napi_ok) {
    return ThrowArgument(info, false, name, "a boolean");
  }
  return true;
}

inline bool NumberArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                      double* out) {
  if (napi_get_value_double(info.Env(), info[index], out) != napi_ok) {
    return ThrowArgument(info, false, name, "a number");
  }
  return true;
}

// An integer from 0 to max (at most 2^53, where doubles stop being exact);
// NaN, fractions and infinities are out of range too.
inline bool IntegerArg(const Napi::CallbackInfo& info, size_t index, const char* name,
                       uint64_t max, uint64_t* out) {
  double value = 0;
  if (!NumberArg(info, index, name, &value)) return false;
  if (!(value >= 0 && value <= static_cast<double>(max) && std::trunc(value) == value)) {
    return ThrowArgument(info, true, name, "an integer from 0 to " + std::to_string(max));
  }
  *out = static_cast<uint64_t>(value);
  return true;
}

// args[0], a handle: *id is 0, which no file has, for a number that is not
// a table id. Only a value that is not a number is refused (TypeError).
inline bool HandleArg(const Napi::CallbackInfo& info, uint32_t* id) {
  double value = 0;
  if (!NumberArg(info, 0, "handle", &value)) return false;
  const bool valid = value >= 1 && value <= UINT32_MAX && std::trunc(value) == value;
  *id = valid ? static_cast<uint32_t>(value) : 0;
  return true;
}

// The open LockFile whose handle is args[0], or nullptr with an exception
// pending: a TypeError when it is not a number, EBADF when it names no open
// file (a released guard used again), with no syscall, since none ran.
inline LockFile* FileArg(const Napi::CallbackInfo& info, FileTable* files) {
  uint32_t id = 0;
  if (!HandleArg(info, &id)) return nullptr;
  LockFile* file = files->Find(id);
  if (file == nullptr) ThrowFailure(info.Env(), Status{-UV_EBADF, nullptr});
  return file;
}

}  // namespace loop_lock

#endif  // LOOP_LOCK_ARGUMENTS_H_
