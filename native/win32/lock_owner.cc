// The holder check on Windows. No marks: a byte-range lock far past the
// record already is the lock (see file.cc), and Windows lists no lock's
// owner anywhere a reader can see. So only a dead pid can be ruled out, as
// on macOS, and a reused one: the record's pid holds the lock as far as can
// be told when it names a live process that started before the record was
// written (as on Linux, with the same 2 s of slack).
#include "../lock_owner.h"

#include <windows.h>

namespace loop_lock {

bool MarkHolder(FileHandle, int64_t) { return false; }

void UnmarkHolder(FileHandle) {}

int64_t MarkedPid(FileHandle) { return kNoMark; }

void PrepareHoldsLock() {}

namespace {

// A FILETIME (100 ns units since 1601) in ms since the Unix epoch.
int64_t UnixMs(const FILETIME& time) {
  const ULONGLONG ticks = (static_cast<ULONGLONG>(time.dwHighDateTime) << 32) | time.dwLowDateTime;
  return static_cast<int64_t>(ticks / 10000) - 11644473600000LL;
}

// Whether the process started more than kStartSlackMs after started_ms:
// then it did not write the record stamped so, and its pid was reused.
// False when Windows does not say.
bool StartedAfter(HANDLE process, int64_t started_ms) {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(process, &created, &exited, &kernel, &user)) return false;
  return UnixMs(created) > started_ms + kStartSlackMs;
}

}  // namespace

bool HoldsLock(FileHandle, const FileId&, int64_t pid, int64_t started_ms, bool) {
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
  const bool holds = alive && !StartedAfter(process, started_ms);
  CloseHandle(process);
  return holds;
}

}  // namespace loop_lock
