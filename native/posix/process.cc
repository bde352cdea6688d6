#include "../process.h"

#include <cerrno>

namespace loop_lock {

Status KillChildrenOnExit() { return Status{ENOTSUP, "KillChildrenOnExit"}; }

}  // namespace loop_lock
