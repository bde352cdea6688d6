// The lock core, with no knowledge of Node: the calls on a lock file that
// each platform implements (native/posix/file.cc, native/win32/file.cc),
// and the record protocol built on them once for all (lock_core.cc).
// Every call reports failure as a Status naming the error and the system
// call that set it, so the binding can turn it into a typed error without
// guessing.
#ifndef LOOP_LOCK_LOCK_CORE_H_
#define LOOP_LOCK_LOCK_CORE_H_

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

namespace loop_lock {

// An open lock file: a descriptor on POSIX, a HANDLE on Windows.
#ifdef _WIN32
using FileHandle = void*;
#else
using FileHandle = int;
#endif

// The longest path, in UTF-8 bytes, that opening can take: PATH_MAX on
// POSIX; on Windows 32,767 UTF-16 units (a \\?\ path), 3 bytes each at most.
#ifdef _WIN32
constexpr size_t kMaxPathBytes = 32767 * 3;
#else
constexpr size_t kMaxPathBytes = PATH_MAX;
#endif

struct Status {
  // The error, numbered so that its negation is libuv's code for it (what
  // Node names, as util.getSystemErrorName does): errno itself on POSIX, a
  // Win32 error translated once (native/win32/error.h) on Windows. 0 means
  // success.
  int error = 0;
  const char* syscall = nullptr;  // the call that failed

  bool ok() const { return error == 0; }
};

// A description of Status::error, as strerror() gives one.
const char* ErrorText(int error);

enum class OpenMode {
  kCreate,    // read-write, created if missing: for taking the lock
  kReadOnly,  // read-only: for probes and readers, which never create
};

// Anything but kSame makes the file stale: the file at the path is no
// longer the one locked, and an acquisition reopens (see Found::kStale in
// lock_file.h); the other values say why, for a guard's state().
enum class Identity {
  kSame = 0,      // the descriptor's inode is the one at the path
  kRemoved = 1,   // nothing is at the path (the held inode was unlinked or moved)
  kReplaced = 2,  // another file (or a symlink) is at the path, even if the
                  // held inode was unlinked by the rename that put it there
  kLinked = 3,    // the inode is at the path but has other hard links too
};

// The file a handle has open, fixed for the handle's life: device and inode
// on POSIX, volume serial number and file index on Windows.
struct FileId {
  unsigned long long dev = 0;
  unsigned long long ino = 0;
};

// ---- What each platform implements ----

// Opens a handle no child inherits, never following a symlink (ELOOP) and
// never truncating. Anything but a regular file is refused: EISDIR for a
// directory, EINVAL for a FIFO, socket or device. kCreate also refuses a
// file with other hard links (EMLINK): the record would be written into
// every one of its names, and not following symlinks cannot tell a hard
// link from the file itself. *id is the opened file. POSIX: O_CLOEXEC |
// O_NOFOLLOW; creates with mode 0666 less the umask, as the Rust reference
// does: the umask is how a group that shares a workspace (umask 002) lets
// every member lock it.
Status OpenLockFile(const char* path, OpenMode mode, FileHandle* file, FileId* id);

// Tries the lock without waiting. *locked is false when another open file
// (another process, thread or handle) holds a conflicting lock. POSIX:
// flock(LOCK_EX or LOCK_SH | LOCK_NB). Windows: LockFileEx, exclusive or
// shared, on the far byte; a handle that holds a lock must unlock before it
// takes another (Windows neither converts nor merges them).
Status TryLock(FileHandle file, bool shared, bool* locked);

// Compares the file `held`, open as `file` (see OpenLockFile), with the one
// at path, not following symlinks. A path that leads nowhere (ENOENT, or
// ENOTDIR when a directory became a file) is kRemoved; the held file with a
// link count other than 1 is kLinked. When kSame, *size is the file's size.
// POSIX: one lstat (the handle is not needed).
Status CheckIdentity(FileHandle file, const char* path, const FileId& held, Identity* identity,
                     long long* size);

// The filesystem a handle lives on, to tell local disks from network and
// FUSE filesystems, where the lock may be local to one host or emulated.
// Linux reports the statfs magic number (f_type); macOS the type name
// (f_fstypename); Windows the type name, prefixed "remote:" on a remote
// volume. The other field stays empty.
struct FilesystemId {
  unsigned long magic = 0;
  std::string name;
};

// `path` is the one the handle was opened with: Windows tells a remote
// volume by it (a UNC path, a remote drive letter); POSIX does not need it.
Status FilesystemOf(FileHandle file, const char* path, FilesystemId* id);

// Closes, first releasing the lock when `locked`, so that anyone woken by
// the close (see the waiter) finds the lock already free.
void Release(FileHandle file, bool locked);

// Drops this handle's lock and keeps it open: for a probe through a handle
// kept open, whose close would be an event for every watcher. POSIX:
// flock(LOCK_UN).
void Unlock(FileHandle file);

// Blocks the calling thread for `ms` milliseconds, or less when a signal
// comes. POSIX: poll() with no descriptors. Windows: Sleep().
void SleepMs(uint64_t ms);

// Positional I/O for the record (below). WriteAt writes `head` and then
// `tail` at `offset`, in one call where the platform can; *written is how
// much went in, which may be short but never 0. ReadAt's *read is 0 at end
// of file. Truncate sets the file's length.
Status WriteAt(FileHandle file, const char* head, size_t head_length, const char* tail,
               size_t tail_length, uint64_t offset, size_t* written);
Status ReadAt(FileHandle file, char* buffer, size_t length, uint64_t offset, size_t* read);
Status Truncate(FileHandle file, uint64_t length);

// ---- The record, the same on every platform (lock_core.cc) ----

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
Status WriteRecord(FileHandle file, const char* data, size_t length, long long size_before);

// Reads the file from offset 0. Reads at most max_bytes + 1 bytes, so a
// result longer than max_bytes means the file is too large to trust; the
// first read that finds it so is the last. Otherwise reads until two reads
// in a row agree and the record is not being written (see WriteRecord), so
// a concurrent rewrite cannot splice two records; a file that does not
// settle within a few tens of microseconds comes back as one NUL byte,
// unreadable.
Status ReadRecord(FileHandle file, size_t max_bytes, std::string* out);

// True when bytes are well-formed UTF-8 (no overlongs, no surrogates).
bool IsValidUtf8(const char* bytes, size_t length);

}  // namespace loop_lock

#endif  // LOOP_LOCK_LOCK_CORE_H_
