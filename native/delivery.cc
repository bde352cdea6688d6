#include "delivery.h"

namespace loop_lock {

bool CanRunJavaScript(napi_env env) {
  // Node-API 8 has no call that answers this (Node-API 10's
  // napi_cannot_run_js status arrived in Node 22.14), but every call that
  // may run JavaScript checks it first and is refused when it cannot:
  // napi_strict_equals is the cheapest of them, and runs none itself.
  napi_value value;
  bool equal = false;
  return napi_get_undefined(env, &value) == napi_ok &&
         napi_strict_equals(env, value, value, &equal) == napi_ok;
}

napi_value NewFailure(napi_env env, const Status& status) {
  napi_value message, error, errno_value, syscall;
  if (napi_create_string_utf8(env, ErrorText(status.error), NAPI_AUTO_LENGTH, &message) !=
          napi_ok ||
      napi_create_error(env, nullptr, message, &error) != napi_ok ||
      napi_create_int32(env, status.error, &errno_value) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_value) != napi_ok) {
    return nullptr;
  }
  if (status.syscall != nullptr &&
      (napi_create_string_utf8(env, status.syscall, NAPI_AUTO_LENGTH, &syscall) != napi_ok ||
       napi_set_named_property(env, error, "syscall", syscall) != napi_ok)) {
    return nullptr;
  }
  return error;
}

void ThrowFailure(napi_env env, const Status& status) {
  napi_value error = NewFailure(env, status);
  if (error != nullptr) napi_throw(env, error);
}

void CallBack(napi_env env, napi_async_context context, napi_value callback, size_t argc,
              const napi_value* argv) {
  napi_value global, result;
  if (napi_get_global(env, &global) != napi_ok) return;
  if (napi_make_callback(env, context, global, callback, argc, argv, &result) == napi_ok) return;
  // napi_make_callback leaves what escaped pending, where Node's own
  // callbacks report it as uncaught. A call refused because JavaScript can
  // no longer run leaves nothing pending; a worker's termination leaves its
  // termination, which napi_fatal_exception refuses in turn.
  bool pending = false;
  napi_value exception;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending ||
      napi_get_and_clear_last_exception(env, &exception) != napi_ok) {
    return;
  }
  napi_fatal_exception(env, exception);
}

}  // namespace loop_lock
