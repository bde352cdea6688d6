// The holder check on Windows. No marks: a byte-range lock far past the
// record already is the lock (see file.cc), and Windows lists no lock's
// owner anywhere a reader can see. So only a dead pid can be ruled out, as
// on macOS: the record's pid holds the lock as far as can be told when it
// names a live process.
#include "../lock_owner.h"

#include <windows.h>

namespace loop_lock {

bool MarkHolder(FileHandle, int64_t) { return false; }

void UnmarkHolder(FileHandle) {}

void PrepareHoldsLock() {}

bool HoldsLock(FileHandle, const FileId&, int64_t pid) {
  // Pids are DWORDs, multiples of 4; 0 is the idle process and never a
  // holder.
  if (pid < 1 || pid > 0xFFFFFFFFLL) return false;
  HANDLE process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE,
                               static_cast<DWORD>(pid));
  if (process == nullptr) {
    // Refused: the process exists but belongs to someone else (as EPERM
    // from kill(pid, 0)). Any other failure (ERROR_INVALID_PARAMETER) is
    // no such process.
    return GetLastError() == ERROR_ACCESS_DENIED;
  }
  // A process object outlives its process while handles to it are open;
  // it is signalled once the process has exited. Waiting rather than
  // GetExitCodeProcess, whose STILL_ACTIVE (259) a process may also exit
  // with.
  const bool alive = WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
  CloseHandle(process);
  return alive;
}

}  // namespace loop_lock
