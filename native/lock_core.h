// The lock core: plain POSIX calls on a lock file, with no knowledge of Node.
// Every call reports failure as a Status naming the errno and the syscall that
// set it, so the binding can turn it into a typed error without guessing.
#ifndef LOOP_LOCK_LOCK_CORE_H_
#define LOOP_LOCK_LOCK_CORE_H_

#include <cstddef>
#include <string>

namespace loop_lock {

struct Status {
  int error = 0;                  // errno value; 0 means success
  const char* syscall = nullptr;  // the call that failed

  bool ok() const { return error == 0; }
};

enum class OpenMode {
  kCreate,    // O_RDWR | O_CREAT: for taking the lock
  kReadOnly,  // O_RDONLY: for probes and readers, which never create
};

enum class Identity {
  kSame = 0,      // the descriptor's inode is the one at the path
  kRemoved = 1,   // nothing is at the path (the held inode was unlinked or moved)
  kReplaced = 2,  // another file (or a symlink) is at the path, even if the
                  // held inode was unlinked by the rename that put it there
  kLinked = 3,    // the inode is at the path but has other hard links too
};

// The inode a descriptor has open, fixed for the descriptor's life.
struct FileId {
  unsigned long long dev = 0;
  unsigned long long ino = 0;
};

// Opens with O_CLOEXEC | O_NOFOLLOW and never O_TRUNC. Creates with mode
// 0666 less the umask, as the Rust reference does: the umask is how a group
// that shares a workspace (umask 002) lets every member lock it.
// Anything but a regular file is refused: EISDIR for a directory, EINVAL for
// a FIFO, socket or device. kCreate also refuses a file with other hard
// links (EMLINK): the record would be written into every one of its names,
// and O_NOFOLLOW cannot tell a hard link from the file itself. *id is the
// opened inode.
Status OpenLockFile(const char* path, OpenMode mode, int* fd, FileId* id);

// Takes flock(LOCK_EX or LOCK_SH | LOCK_NB). *locked is false when another
// open file description holds a conflicting lock (EWOULDBLOCK or EAGAIN).
Status TryLock(int fd, bool shared, bool* locked);

// Writes the record in place at offset 0 with a NUL first byte, truncates
// the file to its length, then writes the real first byte: until then the
// file is unreadable, so no reader, crash or stalled writer can leave or see
// the head of one record on the tail of another. Not truncating to 0 first
// (nor renaming) keeps readers from seeing an empty file and keeps ext4
// from flushing the file on close (truncating to 0 arms its flush-on-close);
// only a write that fails halfway leaves the file empty.
//
// size_before is the file's size when known (-1 when not): the ftruncate is
// skipped when the record is at least that long, since the write alone then
// leaves the file exactly the record. On ext4 that saves a journalled
// timestamp update, the most expensive step of an uncontended acquire.
Status WriteRecord(int fd, const char* data, size_t length, long long size_before);

// Reads the file from offset 0. Reads at most max_bytes + 1 bytes, so a
// result longer than max_bytes means the file is too large to trust; the
// first read that finds it so is the last. Otherwise reads until two reads
// in a row agree and the record is not being written (see WriteRecord), so
// a concurrent rewrite cannot splice two records; a file that does not
// settle within a few tens of microseconds comes back as one NUL byte,
// unreadable.
Status ReadRecord(int fd, size_t max_bytes, std::string* out);

// Compares the inode `held` (see OpenLockFile) with the one at path, not
// following symlinks: one lstat. A path that leads nowhere (ENOENT, or
// ENOTDIR when a directory became a file) is kRemoved; the held inode with
// a link count other than 1 is kLinked. When kSame, *size is the file's size.
Status CheckIdentity(const char* path, const FileId& held, Identity* identity, long long* size);

// The filesystem a descriptor lives on, to tell local disks from network and
// FUSE filesystems, where flock() may be local to one host or emulated with
// POSIX record locks. Linux reports the statfs magic number (f_type), macOS
// the type name (f_fstypename); the other field stays empty.
struct FilesystemId {
  unsigned long magic = 0;
  std::string name;
};

// One fstatfs() call.
Status FilesystemOf(int fd, FilesystemId* id);

// Closes, first releasing the lock when `locked`, so that anyone woken by
// the close (see the waiter) finds the lock already free.
void Release(int fd, bool locked);

// Drops this descriptor's lock and keeps it open: for a probe through a
// descriptor kept open, whose close would be an event for every watcher.
void Unlock(int fd);

// True when bytes are well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(const char* bytes, size_t length);

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_CORE_H_
