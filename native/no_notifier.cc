// No notifier (macOS, Windows, and any platform without one of its own
// beside native/linux/notifier.cc): waits poll on their backoff timer, and
// watch() polls from JavaScript (lib/watch.ts).
#include "notifier.h"

namespace loop_lock {

Notifier* Notifier::Create(napi_env, int) { return nullptr; }

}  // namespace loop_lock
