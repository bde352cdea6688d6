#include "../process.h"

#include <windows.h>

#include "error.h"

namespace loop_lock {

Status KillChildrenOnExit() {
  HANDLE job = CreateJobObjectW(nullptr, nullptr);
  if (job == nullptr) return LastError("CreateJobObjectW");
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  Status status;
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits)) {
    status = LastError("SetInformationJobObject");
  } else if (!AssignProcessToJobObject(job, GetCurrentProcess())) {
    status = LastError("AssignProcessToJobObject");
  }
  // On success the handle stays open for the rest of the process's life,
  // on purpose: its closing, at exit or kill, is what ends the children.
  if (!status.ok()) CloseHandle(job);
  return status;
}

Status InheritableDescriptor(FileHandle, int*) {
  return Status{TranslateError(ERROR_NOT_SUPPORTED), "InheritableDescriptor"};
}

}  // namespace loop_lock
