// The lock file on POSIX: flock() on a descriptor, inode identity by lstat,
// the filesystem by fstatfs.
#include "../lock_core.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef __APPLE__
#include <sys/mount.h>
#else
#include <sys/vfs.h>
#endif

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "eintr.h"

namespace loop_lock {
namespace {

Status Fail(const char* syscall) { return Status{errno, syscall}; }

}  // namespace

const char* ErrorText(int error) { return std::strerror(error); }

void SleepMs(uint64_t ms) { poll(nullptr, 0, static_cast<int>(ms)); }

Status OpenLockFile(const char* path, OpenMode mode, FileHandle* fd, FileId* id) {
  // O_NONBLOCK only matters if something other than a regular file sits at
  // the path: opening a FIFO for reading would otherwise hang until a writer
  // came. Regular files ignore it, and flock() never looks at it.
  const int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                    (mode == OpenMode::kCreate ? O_RDWR | O_CREAT : O_RDONLY);
  const int result = RetryOnEintr([&] { return open(path, flags, 0666); });
  // open() of a unix socket, or of a device whose driver is missing, fails
  // with ENXIO: it is no regular file either, refused like a FIFO.
  if (result < 0 && errno == ENXIO) return Status{EINVAL, "open"};
  if (result < 0) return Fail("open");
  struct stat st;
  if (fstat(result, &st) < 0) {
    const Status status = Fail("fstat");
    close(result);
    return status;
  }
  if (!S_ISREG(st.st_mode)) {
    close(result);
    return Status{S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "open"};
  }
  // A link count of 0 is a file unlinked since the open: the claim's
  // identity check reopens then, so only more than one link is refused.
  if (mode == OpenMode::kCreate && st.st_nlink > 1) {
    close(result);
    return Status{EMLINK, "open"};
  }
  *fd = result;
  id->dev = static_cast<unsigned long long>(st.st_dev);
  id->ino = static_cast<unsigned long long>(st.st_ino);
  return Status{};
}

Status TryLock(FileHandle fd, bool shared, bool* locked) {
  const int operation = (shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  const int result = RetryOnEintr([&] { return flock(fd, operation); });
  if (result == 0) {
    *locked = true;
    return Status{};
  }
  if (errno == EWOULDBLOCK || errno == EAGAIN) {
    *locked = false;
    return Status{};
  }
  return Fail("flock");
}

Status WriteAt(FileHandle fd, const char* head, size_t head_length, const char* tail,
               size_t tail_length, uint64_t offset, size_t* written) {
  struct iovec parts[2] = {{const_cast<char*>(head), head_length},
                           {const_cast<char*>(tail), tail_length}};
  const char* syscall = tail_length == 0 ? "pwrite" : "pwritev";
  const ssize_t n = RetryOnEintr([&] {
    return tail_length == 0 ? pwrite(fd, head, head_length, static_cast<off_t>(offset))
                            : pwritev(fd, parts, 2, static_cast<off_t>(offset));
  });
  if (n < 0) return Fail(syscall);
  if (n == 0) return Status{EIO, syscall};
  *written = static_cast<size_t>(n);
  return Status{};
}

Status ReadAt(FileHandle fd, char* buffer, size_t length, uint64_t offset, size_t* read) {
  const ssize_t n = RetryOnEintr([&] { return pread(fd, buffer, length, static_cast<off_t>(offset)); });
  if (n < 0) return Fail("pread");
  *read = static_cast<size_t>(n);
  return Status{};
}

Status Truncate(FileHandle fd, uint64_t length) {
  const int result = RetryOnEintr([&] { return ftruncate(fd, static_cast<off_t>(length)); });
  return result < 0 ? Fail("ftruncate") : Status{};
}

Status CheckIdentity(FileHandle, const char* path, const FileId& held, Identity* identity,
                     long long* size) {
  struct stat current;
  if (lstat(path, &current) < 0) {
    // ENOTDIR: the lock's directory was moved away and a file put in its
    // place; either way no file is at the path any more.
    if (errno != ENOENT && errno != ENOTDIR) return Fail("lstat");
    *identity = Identity::kRemoved;
    return Status{};
  }
  // The path decides between removed and replaced: a rename over the file
  // (how editors and sed -i save) unlinks it as well, but leaves another
  // file at the path for a newcomer to lock. The held inode being at the
  // path means it still has a link, so no fstat is needed.
  if (held.dev != static_cast<unsigned long long>(current.st_dev) ||
      held.ino != static_cast<unsigned long long>(current.st_ino)) {
    *identity = Identity::kReplaced;
    return Status{};
  }
  if (current.st_nlink != 1) {
    *identity = Identity::kLinked;
    return Status{};
  }
  *identity = Identity::kSame;
  *size = static_cast<long long>(current.st_size);
  return Status{};
}

Status FilesystemOf(FileHandle fd, const char*, FilesystemId* id) {
  struct statfs st;
  const int result = RetryOnEintr([&] { return fstatfs(fd, &st); });
  if (result < 0) return Fail("fstatfs");
#ifdef __APPLE__
  // macOS numbers filesystem types in the order they register; only the
  // name is stable.
  id->name = st.f_fstypename;
#else
  // Magic numbers are 32 bits; f_type is a signed word on 32-bit systems,
  // where CIFS's 0xFF534D42 would come out negative.
  id->magic = static_cast<uint32_t>(st.f_type);
#endif
  return Status{};
}

void Release(FileHandle fd, bool locked) {
  // Errors are ignored on purpose: the kernel drops the lock on close anyway,
  // and close(2) must not be retried on EINTR (the descriptor is gone).
  if (locked) flock(fd, LOCK_UN);
  close(fd);
}

void Unlock(FileHandle fd) { flock(fd, LOCK_UN); }

}  // namespace loop_lock
