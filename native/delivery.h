// Handing results to JavaScript from the addon in ways that cannot abort the
// process while its environment is going away (a worker being terminated, a
// process exiting). node-addon-api turns a call that Node-API refuses into a
// thrown exception, and an exception it cannot throw into a fatal error; a
// refused call is exactly what an environment that can no longer run
// JavaScript answers. So these use the C API, check each status, and drop
// what cannot be delivered: nobody is left to receive it.
#ifndef LOOP_LOCK_DELIVERY_H_
#define LOOP_LOCK_DELIVERY_H_

#include <node_api.h>

#include <cstddef>

#include "lock_core.h"

namespace loop_lock {

// False once the environment can no longer run JavaScript: its worker is
// being terminated, or its process is exiting.
bool CanRunJavaScript(napi_env env);

// The value a failure becomes in JavaScript: an Error whose message is
// ErrorText's, with errno and, when a syscall failed, syscall (lib/errors.ts
// names them). nullptr when it cannot be built.
napi_value NewFailure(napi_env env, const Status& status);

// Throws NewFailure(status), unless it cannot be built or thrown.
void ThrowFailure(napi_env env, const Status& status);

// Calls `callback` from the event loop as Node calls its own callbacks: in
// the async context `context`, then runs the microtasks and ticks it
// queued, and hands an exception that escapes (from it or from a tick) to
// the host's uncaught-exception path: 'uncaughtException', or exit code 1.
void CallBack(napi_env env, napi_async_context context, napi_value callback, size_t argc,
              const napi_value* argv);

}  // namespace loop_lock

#endif  // LOOP_LOCK_DELIVERY_H_
