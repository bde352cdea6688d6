// Retrying a system call that a signal interrupted (EINTR): the host's
// signal handlers belong to Node and the host, and any of them may run in
// the middle of a call. Only for calls that are safe to repeat: never
// close(2), whose descriptor is gone whatever it returns.
#ifndef LOOP_LOCK_EINTR_H_
#define LOOP_LOCK_EINTR_H_

#include <cerrno>

namespace loop_lock {

// Calls `call` until it returns something other than a failure with EINTR.
template <typename Call>
auto RetryOnEintr(Call call) -> decltype(call()) {
  decltype(call()) result;
  do {
    result = call();
  } while (result < 0 && errno == EINTR);
  return result;
}

}  // namespace loop_lock

#endif  // LOOP_LOCK_EINTR_H_
