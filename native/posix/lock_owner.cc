#include "../lock_owner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sysmacros.h>
#endif
#ifdef __APPLE__
#include <sys/sysctl.h>
#endif

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "eintr.h"
#include "proc_holder.h"

namespace loop_lock {
namespace {

// kill(pid, 0) reaches a process without signalling it. EPERM means it
// exists but belongs to someone else.
bool IsAlive(int64_t pid) {
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

#ifdef F_OFD_SETLK

// The mark's offset: 2^40 (past any record, which is at most 1 MiB) plus
// the pid namespace's inode number times 2^22 (pids are below 2^22) plus
// the pid, so a holder in another pid namespace, whose pid names another
// process here, never matches. 0 when the namespace cannot be read.
off_t MarkOffset(int64_t pid) {
  static const unsigned long long pid_namespace = [] {
    char link[64];
    const ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
    if (n <= 0) return 0ULL;
    link[n] = '\0';
    const char* open = std::strchr(link, '[');
    return open == nullptr ? 0ULL : std::strtoull(open + 1, nullptr, 10);
  }();
  return static_cast<off_t>((1ULL << 40) + (pid_namespace << 22) + static_cast<unsigned long long>(pid));
}

int OfdLock(int fd, int command, struct flock* range) {
  return RetryOnEintr([&] { return fcntl(fd, command, range); });
}

// What holds the bytes [start, start + length) of the file, by one
// F_OFD_GETLK: no lock; a mark, at *at; or another lock (or the query
// failed). Only an OFD lock (l_pid -1) on one byte is a mark: a POSIX lock
// over the whole file (fcntl() users) conflicts there too.
enum class MarkFound { kNone, kMark, kOther };

MarkFound FindMark(int fd, off_t start, off_t length, off_t* at) {
  struct flock range = {};
  range.l_type = F_WRLCK;
  range.l_whence = SEEK_SET;
  range.l_start = start;
  range.l_len = length;
  if (OfdLock(fd, F_OFD_GETLK, &range) < 0) return MarkFound::kOther;
  if (range.l_type == F_UNLCK) return MarkFound::kNone;
  if (range.l_pid != -1 || range.l_len != 1) return MarkFound::kOther;
  *at = range.l_start;
  return MarkFound::kMark;
}

bool IsMarked(int fd, int64_t pid) {
  off_t at = 0;
  return FindMark(fd, MarkOffset(pid), 1, &at) == MarkFound::kMark && at == MarkOffset(pid);
}

#else

bool IsMarked(int, int64_t) { return false; }

#endif  // F_OFD_SETLK

#ifdef __linux__

// /proc/locks, opened once per process and kept open (close-on-exec):
// opening a procfs file costs several times what reading it does (about
// 9 us against 2 in a tight loop on the development machine). A read is
// still not cheap: the kernel takes its lock table's rwsem for writing,
// which waits out an RCU grace period unless another read did so moments
// before, so a read on its own took 6 to 20 ms on the development machine
// (2 cores, loaded). Hence only the fallback of HoldsAsWriter.
// -1 when it cannot be used: no procfs, or a /proc of another pid
// namespace, whose pids are not this process's.
int KernelLockList() {
  static const int fd = ProcIsOwn() ? open("/proc/locks", O_RDONLY | O_CLOEXEC) : -1;
  return fd;
}

// How well a /proc/locks entry names the inode, best first. The device is
// the superblock's, which is not always the st_dev that stat reports (btrfs
// subvolumes, overlayfs): the inode number alone is the fallback. NFS and
// SMB emulate flock() with POSIX locks, listed as such.
enum Rank { kFlockDevice, kFlockInode, kPosixDevice, kPosixInode, kNone };

// One line: "7: FLOCK  ADVISORY  WRITE 4242 fe:00:2146971 0 EOF". A line
// whose second field is "->" is a waiter blocked on that lock, not a holder.
Rank RankEntry(char* line, const FileId& id, long long* pid) {
  const char* fields[6];
  int count = 0;
  for (char* save = nullptr; count < 6; ++count) {
    fields[count] = strtok_r(count == 0 ? line : nullptr, " \t", &save);
    if (fields[count] == nullptr) return kNone;
  }
  const bool flock = std::strcmp(fields[1], "FLOCK") == 0;
  if ((!flock && std::strcmp(fields[1], "POSIX") != 0) || std::strcmp(fields[3], "WRITE") != 0) {
    return kNone;
  }
  char* end;
  const unsigned long major_dev = std::strtoul(fields[5], &end, 16);
  if (*end != ':') return kNone;
  const unsigned long minor_dev = std::strtoul(end + 1, &end, 16);
  if (*end != ':') return kNone;
  const unsigned long long ino = std::strtoull(end + 1, &end, 10);
  if (ino != id.ino) return kNone;
  *pid = std::strtoll(fields[4], nullptr, 10);
  const bool same_device = major_dev == major(static_cast<dev_t>(id.dev)) &&
                           minor_dev == minor(static_cast<dev_t>(id.dev));
  if (flock) return same_device ? kFlockDevice : kFlockInode;
  return same_device ? kPosixDevice : kPosixInode;
}

// Reads /proc/locks: *holds is whether the best-ranked entries for the
// inode include pid. False when the kernel lists no holder for it: the lock
// was released since it was found held, or its holder is on another host.
bool ReadKernelLocks(int fd, const FileId& id, int64_t pid, bool* holds) {
  char buffer[8192];
  size_t kept = 0;
  off_t offset = 0;
  Rank best = kNone;
  *holds = false;
  for (;;) {
    const ssize_t n =
        RetryOnEintr([&] { return pread(fd, buffer + kept, sizeof buffer - 1 - kept, offset); });
    if (n < 0) return false;
    offset += n;
    kept += static_cast<size_t>(n);
    buffer[kept] = '\0';
    char* line = buffer;
    for (char* newline; (newline = std::strchr(line, '\n')) != nullptr; line = newline + 1) {
      *newline = '\0';
      long long entry_pid = 0;
      const Rank rank = RankEntry(line, id, &entry_pid);
      if (rank == kNone || rank > best) continue;
      *holds = (rank == best && *holds) || entry_pid == pid;
      best = rank;
      // Only one exclusive flock() can exist on an inode: this is it.
      if (best == kFlockDevice) return true;
    }
    kept = static_cast<size_t>(buffer + kept - line);
    // A line longer than the buffer is none of the entries looked for.
    if (kept == sizeof buffer - 1) kept = 0;
    std::memmove(buffer, line, kept);
    if (n == 0) return true;
  }
}

#endif  // __linux__

#ifdef __APPLE__

// Whether process `pid` started more than kStartSlackMs after started_ms,
// by the kernel's process table (what ps shows); false when it does not say.
bool StartedAfter(int64_t pid, int64_t started_ms) {
  int name[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, static_cast<int>(pid)};
  struct kinfo_proc process;
  size_t size = sizeof process;
  if (sysctl(name, 4, &process, &size, nullptr, 0) != 0 || size < sizeof process) return false;
  const struct timeval& start = process.kp_proc.p_starttime;
  return static_cast<int64_t>(start.tv_sec) * 1000 + start.tv_usec / 1000 > started_ms + kStartSlackMs;
}

#endif  // __APPLE__

}  // namespace

bool MarkHolder(FileHandle fd, int64_t pid) {
#ifdef F_OFD_SETLK
  struct flock range = {};
  range.l_type = F_WRLCK;
  range.l_whence = SEEK_SET;
  range.l_start = MarkOffset(pid);
  range.l_len = 1;
  return OfdLock(fd, F_OFD_SETLK, &range) == 0;
#else
  (void)fd;
  (void)pid;
  return false;
#endif
}

int64_t MarkedPid(FileHandle fd) {
#ifdef F_OFD_SETLK
  constexpr off_t kPids = off_t{1} << 22;
  const off_t first = MarkOffset(0);
  off_t at = 0;
  switch (FindMark(fd, first, kPids, &at)) {
    case MarkFound::kNone:
      return kNoMark;
    case MarkFound::kOther:
      return kMarkUnread;
    case MarkFound::kMark:
      break;
  }
  // Pid 0 addresses no process: no holder marks it.
  return at > first && at < first + kPids ? static_cast<int64_t>(at - first) : kMarkUnread;
#else
  (void)fd;
  return kNoMark;
#endif
}

void UnmarkHolder(FileHandle fd) {
#ifdef F_OFD_SETLK
  struct flock range = {};
  range.l_type = F_UNLCK;
  range.l_whence = SEEK_SET;
  range.l_start = static_cast<off_t>(1ULL << 40);
  range.l_len = 0;  // to the end: whatever mark this descriptor holds
  OfdLock(fd, F_OFD_SETLK, &range);
#else
  (void)fd;
#endif
}

void PrepareHoldsLock() {
#ifdef __linux__
  KernelLockList();
#endif
}

bool HoldsLock(FileHandle fd, const FileId& id, int64_t pid, int64_t started_ms,
               bool may_be_marked) {
  if (pid < 1 || pid > INT_MAX) return false;
  if (may_be_marked && IsMarked(fd, pid)) return true;
#ifdef __linux__
  // The process's own entries say whether it holds the lock and started
  // in time; that they could be read says it exists, so a live holder
  // needs no kill() below: four system calls once its descriptor is known.
  if (ProcIsOwn()) {
    const ProcAnswer held = HoldsAsWriter(pid, id, started_ms);
    if (held != ProcAnswer::kUnknown) return held == ProcAnswer::kYes;
  }
#endif
  // A dead pid holds nothing; this costs a microsecond, where reading
  // /proc/locks costs milliseconds (see KernelLockList).
  if (!IsAlive(pid)) return false;
#ifdef __linux__
  const int locks = KernelLockList();
  bool holds = false;
  if (locks >= 0 && ReadKernelLocks(locks, id, pid, &holds)) return holds;
#elif defined(__APPLE__)
  (void)id;
  if (StartedAfter(pid, started_ms)) return false;
#else
  (void)id;
  (void)started_ms;
#endif
  return true;
}

}  // namespace loop_lock
