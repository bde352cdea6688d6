#include "lock_core.h"

#include <fcntl.h>
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

namespace loop_lock {
namespace {

Status Fail(const char* syscall) { return Status{errno, syscall}; }

// Reads go through a buffer of this size: a record that fits (they are a
// few hundred bytes) costs one pread.
constexpr size_t kReadChunk = 4096;

// How many times a record that changes, or is being written, is read again
// before it counts as unreadable for now: 64 preads take tens of
// microseconds, longer than a write does unless its writer is preempted.
constexpr int kMaxRereads = 64;

// The first byte of a record while it is being written (and of one that was
// rewritten under every read): no JSON text starts with it.
constexpr char kWriting = '\0';

Status PwriteAll(int fd, const char* data, size_t length, size_t offset) {
  size_t written = 0;
  while (written < length) {
    const ssize_t n = pwrite(fd, data + written, length - written,
                             static_cast<off_t>(offset + written));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail("pwrite");
    }
    if (n == 0) return Status{EIO, "pwrite"};
    written += static_cast<size_t>(n);
  }
  return Status{};
}

Status Truncate(int fd, size_t length) {
  int result;
  do {
    result = ftruncate(fd, static_cast<off_t>(length));
  } while (result < 0 && errno == EINTR);
  return result < 0 ? Fail("ftruncate") : Status{};
}

// Reads from offset 0 until end of file or limit bytes. A short read of a
// regular file means end of file, so a record that fits in the buffer
// costs one pread.
Status ReadOnce(int fd, size_t limit, std::string* out) {
  char chunk[kReadChunk];
  out->clear();
  while (out->size() < limit) {
    const size_t want = limit - out->size() < sizeof chunk
                            ? limit - out->size()
                            : sizeof chunk;
    const ssize_t n =
        pread(fd, chunk, want, static_cast<off_t>(out->size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail("pread");
    }
    out->append(chunk, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < want) break;
  }
  return Status{};
}

}  // namespace

Status OpenLockFile(const char* path, OpenMode mode, int* fd, FileId* id) {
  // O_NONBLOCK only matters if something other than a regular file sits at
  // the path: opening a FIFO for reading would otherwise hang until a writer
  // came. Regular files ignore it, and flock() never looks at it.
  const int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                    (mode == OpenMode::kCreate ? O_RDWR | O_CREAT : O_RDONLY);
  int result;
  do {
    result = open(path, flags, 0666);
  } while (result < 0 && errno == EINTR);
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

Status TryLock(int fd, bool shared, bool* locked) {
  const int operation = (shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  int result;
  do {
    result = flock(fd, operation);
  } while (result < 0 && errno == EINTR);
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

Status WriteRecord(int fd, const char* data, size_t length, long long size_before) {
  if (length == 0) return Truncate(fd, 0);
  // Readers take no lock, and the kernel copies a write into the file from
  // the front while they read: a reader can meet the new record's head on
  // the old one's tail, and a writer stopped there (killed between two
  // pages, or its CPU taken away mid-copy) leaves that state in place for
  // as long as it likes. So the record goes in with a NUL first byte,
  // which no JSON text starts with, and gets its real first byte last,
  // after the rest is in place and the file cut to length: every state
  // before that is unreadable, none is a record nobody wrote.
  struct iovec parts[2] = {{const_cast<char*>(&kWriting), 1},
                           {const_cast<char*>(data) + 1, length - 1}};
  ssize_t n;
  do {
    n = pwritev(fd, parts, 2, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Fail("pwritev");
  if (n == 0) return Status{EIO, "pwritev"};
  const auto done = static_cast<size_t>(n);
  Status status = PwriteAll(fd, data + done, length - done, done);
  if (status.ok() && (size_before < 0 || static_cast<size_t>(size_before) > length)) {
    status = Truncate(fd, length);
  }
  if (status.ok()) status = PwriteAll(fd, data, 1, 0);
  // A write that failed halfway (ENOSPC, say) leaves part of a record: an
  // empty file reads as "no metadata yet" instead. If even that fails, the
  // write's error is still the one to report.
  if (!status.ok()) Truncate(fd, 0);
  return status;
}

Status ReadRecord(int fd, size_t max_bytes, std::string* out) {
  Status status = ReadOnce(fd, max_bytes + 1, out);
  // Too large is the answer whatever the bytes say, and settles nothing
  // by being read again: a large file that starts with NUL (a sparse one,
  // say) would otherwise be reread in full, up to 64 times.
  if (!status.ok() || out->size() > max_bytes) return status;
  // Reads do not exclude writes: a reader preempted in the middle of its
  // copy, or between two preads of a long record, can pair the head of one
  // record with the tail of the next holder's, which may parse as a record
  // nobody wrote. Keep a read only when the next one agrees with it. A
  // record that starts with NUL is being written (see WriteRecord), by a
  // writer a few microseconds from done (or dead): read it again too.
  std::string again;
  for (int reads = 0; reads < kMaxRereads; ++reads) {
    status = ReadOnce(fd, max_bytes + 1, &again);
    if (!status.ok()) return status;
    if (again == *out && (out->empty() || out->front() != kWriting)) {
      return Status{};
    }
    out->swap(again);
    if (out->size() > max_bytes) return Status{};
  }
  // Rewritten under every read: report it the way a write in progress
  // looks (see WriteRecord), as unreadable for now.
  out->assign(1, kWriting);
  return Status{};
}

Status CheckIdentity(const char* path, const FileId& held, Identity* identity, long long* size) {
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

Status FilesystemOf(int fd, FilesystemId* id) {
  struct statfs st;
  int result;
  do {
    result = fstatfs(fd, &st);
  } while (result < 0 && errno == EINTR);
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

void Release(int fd, bool locked) {
  // Errors are ignored on purpose: the kernel drops the lock on close anyway,
  // and close(2) must not be retried on EINTR (the descriptor is gone).
  if (locked) flock(fd, LOCK_UN);
  close(fd);
}

void Unlock(int fd) { flock(fd, LOCK_UN); }

bool IsValidUtf8(const char* bytes, size_t length) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes);
  size_t i = 0;
  while (i < length) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    unsigned int code_point;
    unsigned int min;
    if ((c & 0xE0) == 0xC0) {
      extra = 1, code_point = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, code_point = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, code_point = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (length - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (s[i + k] & 0x3F);
    }
    if (code_point < min || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace loop_lock
