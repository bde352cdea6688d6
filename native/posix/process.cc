#include "../process.h"

#include <cerrno>

namespace loop_lock {

Status KillChildrenOnExit() { return Status{ENOTSUP, "KillChildrenOnExit"}; }

Status InheritableDescriptor(FileHandle file, int* descriptor) {
  *descriptor = file;
  return Status{};
}

}  // namespace loop_lock
