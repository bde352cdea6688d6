#ifdef __linux__

#include "proc_holder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "../lock_owner.h"
#include "eintr.h"

namespace loop_lock {
namespace {

// Reads a small /proc file whole into buffer, NUL-terminated: procfs makes
// these files in one go and hands them out in one read. The length read,
// or -1 with errno set. With `ino`, also the inode number of the entry.
ssize_t ReadProcFile(const char* path, char* buffer, size_t size, unsigned long long* ino = nullptr) {
  const int fd = RetryOnEintr([&] { return open(path, O_RDONLY | O_CLOEXEC); });
  if (fd < 0) return -1;
  struct stat entry;
  if (ino != nullptr) *ino = fstat(fd, &entry) == 0 ? static_cast<unsigned long long>(entry.st_ino) : 0;
  const ssize_t n = RetryOnEintr([&] { return read(fd, buffer, size - 1); });
  const int error = errno;
  close(fd);
  if (n < 0) {
    errno = error;
    return -1;
  }
  buffer[n] = '\0';
  return n;
}

// What a failed read of a descriptor's entries says: the descriptor was
// closed meanwhile (ENOENT), or these entries cannot tell (another user's
// process: EACCES; no descriptor left to read with: EMFILE).
ProcAnswer ReadFailed(int error) { return error == ENOENT ? ProcAnswer::kNo : ProcAnswer::kUnknown; }

// What the lock lines of a descriptor's fdinfo say of the file `id`.
struct Listed {
  ProcAnswer held = ProcAnswer::kNo;
  bool same_device = false;  // the lock's device is the file's st_dev
};

// The locks an open file description holds, as its fdinfo lists them after
// its pos, flags, mnt_id and ino lines: "lock:\t1: FLOCK  ADVISORY  WRITE
// 4242 fe:00:2146971 0 EOF". Only locks held through that very open file
// description are listed (a waiter is not), flock() ones first, so the
// first 4 KiB read has them all; reading them takes only that inode's
// spinlock. kYes for an exclusive flock() on an inode numbered as `id`;
// kUnknown for an exclusive POSIX lock there and no flock() one: a network
// filesystem that emulates flock() lists it so, and /proc/locks then ranks
// what it shows. The device is the superblock's, which is the st_dev that
// stat reports except on btrfs subvolumes and some overlayfs setups: where
// it differs, the caller compares the descriptor's own stat with the file.
Listed LockListed(char* text, const FileId& id) {
  Listed listed;
  char* save = nullptr;
  for (char* line = strtok_r(text, "\n", &save); line != nullptr; line = strtok_r(nullptr, "\n", &save)) {
    if (std::strncmp(line, "lock:", 5) != 0) continue;
    // "1:", the kind, "ADVISORY" (or "MANDATORY"), the access, the pid, the inode.
    const char* fields[6] = {};
    char* rest = nullptr;
    for (int i = 0; i < 6; ++i) fields[i] = strtok_r(i == 0 ? line + 5 : nullptr, " \t", &rest);
    unsigned int major_dev = 0;
    unsigned int minor_dev = 0;
    unsigned long long ino = 0;
    if (fields[5] == nullptr || std::strcmp(fields[3], "WRITE") != 0 ||
        std::sscanf(fields[5], "%x:%x:%llu", &major_dev, &minor_dev, &ino) != 3 || ino != id.ino) {
      continue;
    }
    const bool flock = std::strcmp(fields[1], "FLOCK") == 0;
    if (!flock && std::strcmp(fields[1], "POSIX") != 0) continue;
    listed.held = flock ? ProcAnswer::kYes : ProcAnswer::kUnknown;
    listed.same_device = major_dev == major(static_cast<dev_t>(id.dev)) &&
                         minor_dev == minor(static_cast<dev_t>(id.dev));
    if (flock) break;
  }
  return listed;
}

// Whether descriptor `fd` of process `pid` holds the exclusive flock() lock
// on the file `id`, by its fdinfo. Where the lock's device cannot tell, a
// stat() through the /proc/<pid>/fd link, which reaches the file itself.
// Never a stat() of a descriptor that holds no lock on the file: that would
// reach into whatever filesystem the process has files on (a network mount
// that hangs), where fdinfo only reads the process's own table.
// With `fdinfo_ino`, also the inode number of that fdinfo entry (see
// RememberedDescriptors).
ProcAnswer DescriptorHolds(int64_t pid, const char* fd, const FileId& id,
                           unsigned long long* fdinfo_ino = nullptr) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%lld/fdinfo/%s", static_cast<long long>(pid), fd);
  char text[4096];
  if (ReadProcFile(path, text, sizeof text, fdinfo_ino) < 0) return ReadFailed(errno);
  const Listed listed = LockListed(text, id);
  if (listed.held != ProcAnswer::kYes || listed.same_device) return listed.held;
  std::snprintf(path, sizeof path, "/proc/%lld/fd/%s", static_cast<long long>(pid), fd);
  struct stat file;
  if (stat(path, &file) != 0) return ReadFailed(errno);
  const bool same_file = static_cast<unsigned long long>(file.st_dev) == id.dev &&
                         static_cast<unsigned long long>(file.st_ino) == id.ino;
  return same_file ? ProcAnswer::kYes : ProcAnswer::kNo;
}

// Every descriptor of process `pid`, for the one that holds the lock on
// `id` (*found): one fdinfo read each. kUnknown when the list cannot be
// read (another user's process; hidepid; a process that exited meanwhile:
// /proc/locks, read then, can tell), or when a descriptor could not say;
// kYes wins over either.
ProcAnswer FindHoldingDescriptor(int64_t pid, const FileId& id, int* found) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%lld/fd", static_cast<long long>(pid));
  DIR* descriptors = opendir(path);
  if (descriptors == nullptr) return ProcAnswer::kUnknown;
  ProcAnswer answer = ProcAnswer::kNo;
  for (const dirent* entry; (entry = readdir(descriptors)) != nullptr;) {
    if (entry->d_name[0] == '.') continue;
    const ProcAnswer held = DescriptorHolds(pid, entry->d_name, id);
    if (held == ProcAnswer::kYes) {
      *found = std::atoi(entry->d_name);
      answer = held;
      break;
    }
    if (held == ProcAnswer::kUnknown) answer = held;
  }
  closedir(descriptors);
  return answer;
}

// The inode number of /proc/<pid>/fdinfo/<fd> (see RememberedDescriptors),
// 0 when it cannot be read.
unsigned long long FdinfoInode(int64_t pid, int fd) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%lld/fdinfo/%d", static_cast<long long>(pid), fd);
  struct stat entry;
  return stat(path, &entry) == 0 ? static_cast<unsigned long long>(entry.st_ino) : 0;
}

// The descriptor that last held the lock, per process and file, with the
// process's start time: a holder keeps its descriptor, so the next check
// reads that one fdinfo only. Its entry's inode number says whether it is
// still the same process's: procfs makes a new inode (a new number) for
// /proc/<pid>/fdinfo/<fd> when it looks the name up for another process
// (its entries are dropped when a process exits, and an inode refers to one
// process for life), or when it evicted the old one; either way the start
// time is read again, from /proc/<pid>/stat, the costliest file of a
// check. A few entries, for a process that checks several lock files
// (watches of several workspaces); the oldest goes first. Shared by every
// thread (worker threads check too), under a mutex held only to copy an
// entry.
class RememberedDescriptors {
 public:
  struct Entry {
    int64_t pid = 0;  // no process: pids start at 1
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    int fd = -1;
    unsigned long long fdinfo_ino = 0;
    int64_t start_since_boot_ms = -1;
  };

  bool Recall(int64_t pid, const FileId& id, Entry* out) {
    std::lock_guard<std::mutex> hold(mutex_);
    for (const Entry& entry : entries_) {
      if (entry.pid == pid && entry.dev == id.dev && entry.ino == id.ino) {
        *out = entry;
        return true;
      }
    }
    return false;
  }

  void Remember(const Entry& remembered) {
    std::lock_guard<std::mutex> hold(mutex_);
    for (Entry& entry : entries_) {
      if (entry.pid == remembered.pid && entry.dev == remembered.dev && entry.ino == remembered.ino) {
        entry = remembered;
        return;
      }
    }
    entries_[next_] = remembered;
    next_ = (next_ + 1) % kEntries;
  }

 private:
  static constexpr size_t kEntries = 16;
  std::mutex mutex_;
  Entry entries_[kEntries];
  size_t next_ = 0;
};

RememberedDescriptors& Remembered() {
  // Never destroyed: a worker thread may still check while the process exits.
  static RememberedDescriptors* remembered = new RememberedDescriptors();
  return *remembered;
}

// The wall-clock time of boot, in ms: the realtime clock less the time
// since boot, which is how the kernel reckons /proc/stat's btime, but not
// cut to whole seconds. CLOCK_BOOTTIME counts time suspended, as process
// start times do. Reckoned at each call (two vDSO reads, no system call),
// so that a step of the wall clock moves it as it moves the kernel's.
int64_t BootTimeMs() {
  timespec real{};
  timespec boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  return (static_cast<int64_t>(real.tv_sec) - boot.tv_sec) * 1000 + (real.tv_nsec - boot.tv_nsec) / 1000000;
}

// When process `pid` started, in ms since boot, or -1 when /proc does not
// say: field 22 of /proc/<pid>/stat, in clock ticks since boot.
int64_t StartSinceBootMs(int64_t pid) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) return -1;
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%lld/stat", static_cast<long long>(pid));
  char text[1024];
  if (ReadProcFile(path, text, sizeof text) < 0) return -1;
  // Field 2, the command name, is in parentheses and may hold anything,
  // spaces and ')' included; the fields after the last ')' are numbers
  // (and field 3, a state letter), one space apart.
  const char* field = std::strrchr(text, ')');
  for (int number = 3; field != nullptr && number <= 22; ++number) field = std::strchr(field + 1, ' ');
  if (field == nullptr) return -1;
  char* end = nullptr;
  const unsigned long long ticks = std::strtoull(field + 1, &end, 10);
  if (end == field + 1) return -1;
  const auto per_second = static_cast<unsigned long long>(ticks_per_second);
  return static_cast<int64_t>(ticks / per_second * 1000 + ticks % per_second * 1000 / per_second);
}

// Whether a process that started `start_since_boot_ms` after boot started
// more than kStartSlackMs after `started_ms` (ms since the epoch): then it
// did not write a record stamped so.
bool StartedAfter(int64_t start_since_boot_ms, int64_t started_ms) {
  return BootTimeMs() + start_since_boot_ms > started_ms + kStartSlackMs;
}

}  // namespace

bool ProcIsOwn() {
  static const bool own = [] {
    char self[32];
    const ssize_t n = readlink("/proc/self", self, sizeof self - 1);
    if (n <= 0) return false;
    self[n] = '\0';
    return std::strtoll(self, nullptr, 10) == getpid();
  }();
  return own;
}

ProcAnswer HoldsAsWriter(int64_t pid, const FileId& id, int64_t started_ms) {
  RememberedDescriptors::Entry entry;
  if (Remembered().Recall(pid, id, &entry)) {
    char fd[16];
    std::snprintf(fd, sizeof fd, "%d", entry.fd);
    unsigned long long fdinfo_ino = 0;
    if (DescriptorHolds(pid, fd, id, &fdinfo_ino) == ProcAnswer::kYes) {
      // Another inode for the entry: maybe another process by that pid.
      if (fdinfo_ino != entry.fdinfo_ino) {
        entry.start_since_boot_ms = StartSinceBootMs(pid);
        if (entry.start_since_boot_ms < 0) return ProcAnswer::kUnknown;
        entry.fdinfo_ino = fdinfo_ino;
        Remembered().Remember(entry);
      }
      return StartedAfter(entry.start_since_boot_ms, started_ms) ? ProcAnswer::kNo : ProcAnswer::kYes;
    }
  }
  // The start time first: a process that started too late is no writer,
  // and its descriptors need not be read.
  const int64_t start = StartSinceBootMs(pid);
  if (start < 0) return ProcAnswer::kUnknown;
  if (StartedAfter(start, started_ms)) return ProcAnswer::kNo;
  int found = -1;
  const ProcAnswer answer = FindHoldingDescriptor(pid, id, &found);
  // Only the descriptor found is stat()ed for its entry's number, not each one read.
  if (answer == ProcAnswer::kYes) Remembered().Remember({pid, id.dev, id.ino, found, FdinfoInode(pid, found), start});
  return answer;
}

}  // namespace loop_lock

#endif  // __linux__
