// The lock file on Windows: LockFileEx on one byte far past any record,
// identity by volume serial number and file index, remote volumes told by
// their path and drive type. The record protocol above it (lock_core.cc)
// is the same as on POSIX.
#include "../lock_core.h"

#include <uv.h>
#include <windows.h>

#include <cwctype>
#include <string>

#include "error.h"

namespace loop_lock {
namespace {

// The byte the lock covers. Byte-range locks on Windows are mandatory: a
// lock on the record's own bytes would make every reader's ReadFile fail
// with ERROR_LOCK_VIOLATION, so no one could learn who holds the lock. A
// record is at most 1 MiB and readers read at most 1 MiB + 1 bytes, so the
// lock lies far past anything read or written, yet inside the signed 64-bit
// offsets every filesystem accepts; locks past the end of a file are fine.
constexpr uint64_t kLockOffset = uint64_t{1} << 62;

// Longest path CreateFileW takes, in UTF-16 units, with the \\?\ prefix.
constexpr size_t kMaxWidePath = 32767;

OVERLAPPED At(uint64_t offset) {
  OVERLAPPED overlapped{};
  overlapped.Offset = static_cast<DWORD>(offset);
  overlapped.OffsetHigh = static_cast<DWORD>(offset >> 32);
  return overlapped;
}

bool StartsWith(const std::wstring& text, const wchar_t* prefix) {
  return text.compare(0, wcslen(prefix), prefix) == 0;
}

// The path as CreateFileW takes it: UTF-16, and namespaced (\\?\C:\...,
// \\?\UNC\server\share\...) as Node's fs does with path.toNamespacedPath, so
// that paths longer than MAX_PATH open too. lib/ passes absolute paths that
// path.resolve has normalised, which is what a \\?\ path must be.
Status WidePath(const char* path, std::wstring* out) {
  const int length = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, nullptr, 0);
  if (length <= 0) return LastError("MultiByteToWideChar");
  std::wstring wide(static_cast<size_t>(length), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, &wide[0], length);
  wide.resize(static_cast<size_t>(length) - 1);
  if (StartsWith(wide, L"\\\\?\\") || StartsWith(wide, L"\\\\.\\")) {
    *out = std::move(wide);
  } else if (wide.size() >= 3 && iswalpha(wide[0]) && wide[1] == L':' && wide[2] == L'\\') {
    *out = L"\\\\?\\" + wide;
  } else if (StartsWith(wide, L"\\\\")) {
    *out = L"\\\\?\\UNC\\" + wide.substr(2);
  } else {
    *out = std::move(wide);
  }
  if (out->size() >= kMaxWidePath) return Status{-UV_ENAMETOOLONG, "CreateFileW"};
  return Status{};
}

uint64_t FileIndex(const BY_HANDLE_FILE_INFORMATION& info) {
  return (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
}

// Whether a delete is pending on the handle's file: deleted by name while
// open (the name lingers until the last handle closes).
bool DeletePending(FileHandle file) {
  FILE_STANDARD_INFO info{};
  return GetFileInformationByHandleEx(file, FileStandardInfo, &info, sizeof info) &&
         info.DeletePending;
}

}  // namespace

Status OpenLockFile(const char* path, OpenMode mode, FileHandle* file, FileId* id) {
  std::wstring wide;
  Status status = WidePath(path, &wide);
  if (!status.ok()) return status;
  // Sharing read, write and delete: readers, probes and deleters (rm -rf,
  // git clean) are never refused, as on POSIX. No security attributes: no
  // child process inherits the handle. FILE_FLAG_OPEN_REPARSE_POINT opens a
  // symlink or junction itself, to be refused below rather than followed.
  const bool create = mode == OpenMode::kCreate;
  HANDLE handle = CreateFileW(wide.c_str(), create ? GENERIC_READ | GENERIC_WRITE : GENERIC_READ,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                              create ? OPEN_ALWAYS : OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
  if (handle == INVALID_HANDLE_VALUE) {
    status = LastError("CreateFileW");
    // A directory cannot be opened as a file: CreateFileW says only
    // "access denied".
    if (status.error == -UV_EACCES) {
      const DWORD attributes = GetFileAttributesW(wide.c_str());
      if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
        return Status{-UV_EISDIR, "CreateFileW"};
      }
    }
    return status;
  }
  BY_HANDLE_FILE_INFORMATION info;
  if (GetFileType(handle) != FILE_TYPE_DISK) {
    status = Status{-UV_EINVAL, "CreateFileW"};  // a device, pipe or console
  } else if (!GetFileInformationByHandle(handle, &info)) {
    status = LastError("GetFileInformationByHandle");
  } else if ((info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    status = Status{-UV_ELOOP, "CreateFileW"};
  } else if ((info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
    status = Status{-UV_EISDIR, "CreateFileW"};
  } else if (create && info.nNumberOfLinks > 1) {
    // As on POSIX: the record would be written into every name of the file.
    status = Status{-UV_EMLINK, "CreateFileW"};
  }
  if (!status.ok()) {
    CloseHandle(handle);
    return status;
  }
  *file = handle;
  id->dev = info.dwVolumeSerialNumber;
  id->ino = FileIndex(info);
  return Status{};
}

Status TryLock(FileHandle file, bool shared, bool* locked) {
  OVERLAPPED at = At(kLockOffset);
  const DWORD flags = LOCKFILE_FAIL_IMMEDIATELY | (shared ? 0 : LOCKFILE_EXCLUSIVE_LOCK);
  if (!LockFileEx(file, flags, 0, 1, 0, &at)) {
    const DWORD error = GetLastError();
    if (error != ERROR_LOCK_VIOLATION) return Status{TranslateError(error), "LockFileEx"};
    *locked = false;
    return Status{};
  }
  // Windows locks neither convert (a handle's own shared lock refuses its
  // exclusive one) nor merge (each lock needs its own unlock): a handle
  // holds one lock at a time, as every caller takes it (see Release).
  *locked = true;
  return Status{};
}

void SleepMs(uint64_t ms) { Sleep(static_cast<DWORD>(ms)); }

Status CheckIdentity(FileHandle file, const char* path, const FileId& held, Identity* identity,
                     long long* size) {
  std::wstring wide;
  Status status = WidePath(path, &wide);
  if (!status.ok()) return status;
  HANDLE current = CreateFileW(wide.c_str(), FILE_READ_ATTRIBUTES,
                               FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                               OPEN_EXISTING,
                               FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, nullptr);
  if (current == INVALID_HANDLE_VALUE) {
    const DWORD error = GetLastError();
    // A file deleted while open keeps its name until the last handle is
    // closed, and opening that name is refused as access denied.
    if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND ||
        (error == ERROR_ACCESS_DENIED && DeletePending(file))) {
      *identity = Identity::kRemoved;
      return Status{};
    }
    return Status{TranslateError(error), "CreateFileW"};
  }
  BY_HANDLE_FILE_INFORMATION info;
  const bool ok = GetFileInformationByHandle(current, &info);
  status = ok ? Status{} : LastError("GetFileInformationByHandle");
  CloseHandle(current);
  if (!status.ok()) return status;
  if (held.dev != info.dwVolumeSerialNumber || held.ino != FileIndex(info)) {
    *identity = Identity::kReplaced;
  } else if (DeletePending(file)) {
    *identity = Identity::kRemoved;
  } else if (info.nNumberOfLinks != 1) {
    *identity = Identity::kLinked;
  } else {
    *identity = Identity::kSame;
    *size = static_cast<long long>((static_cast<uint64_t>(info.nFileSizeHigh) << 32) |
                                   info.nFileSizeLow);
  }
  return Status{};
}

namespace {

// Whether a namespaced path (see WidePath) is on a remote volume: a UNC
// path, or a drive letter Windows calls remote (a mapped network drive).
bool IsRemote(const std::wstring& path) {
  if (StartsWith(path, L"\\\\?\\UNC\\")) return true;
  return StartsWith(path, L"\\\\?\\") && path.size() >= 7 && path[5] == L':' &&
         GetDriveTypeW(path.substr(4, 3).c_str()) == DRIVE_REMOTE;
}

}  // namespace

Status FilesystemOf(FileHandle file, const char* path, FilesystemId* id) {
  wchar_t type[MAX_PATH + 1] = {};
  if (!GetVolumeInformationByHandleW(file, nullptr, 0, nullptr, nullptr, nullptr, type,
                                     MAX_PATH + 1)) {
    return LastError("GetVolumeInformationByHandleW");
  }
  // Remote by the path it was opened with, or by where that path led: a
  // local path through a symlink to a share has a UNC final path. Not every
  // Windows (nor Wine) can name the final path of every file; the opened
  // path alone then decides.
  std::wstring opened;
  const Status status = WidePath(path, &opened);
  if (!status.ok()) return status;
  bool remote = IsRemote(opened);
  std::wstring final_path(kMaxWidePath, L'\0');
  const DWORD length =
      GetFinalPathNameByHandleW(file, &final_path[0], static_cast<DWORD>(final_path.size()),
                                FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
  if (!remote && length > 0 && length < final_path.size()) {
    final_path.resize(length);
    remote = IsRemote(final_path);
  }
  char name[3 * (MAX_PATH + 1)];
  const int bytes = WideCharToMultiByte(CP_UTF8, 0, type, -1, name, sizeof name, nullptr, nullptr);
  id->name = std::string(remote ? "remote:" : "") + (bytes > 0 ? name : "unknown");
  return Status{};
}

void Unlock(FileHandle file) {
  OVERLAPPED at = At(kLockOffset);
  UnlockFileEx(file, 0, 1, 0, &at);
}

void Release(FileHandle file, bool locked) {
  // As on POSIX, errors are ignored: closing drops the lock anyway.
  if (locked) {
    OVERLAPPED at = At(kLockOffset);
    UnlockFileEx(file, 0, 1, 0, &at);
  }
  CloseHandle(file);
}

Status WriteAt(FileHandle file, const char* head, size_t head_length, const char* tail,
               size_t tail_length, uint64_t offset, size_t* written) {
  // Records are at most 1 MiB, far below WriteFile's 4 GiB per call.
  OVERLAPPED at = At(offset);
  DWORD n = 0;
  if (!WriteFile(file, head, static_cast<DWORD>(head_length), &n, &at)) return LastError("WriteFile");
  if (n == 0) return Status{-UV_EIO, "WriteFile"};
  *written = n;
  if (n < head_length || tail_length == 0) return Status{};
  at = At(offset + n);
  DWORD more = 0;
  // A failure here comes back from the caller's next write of the tail.
  if (WriteFile(file, tail, static_cast<DWORD>(tail_length), &more, &at)) *written += more;
  return Status{};
}

Status ReadAt(FileHandle file, char* buffer, size_t length, uint64_t offset, size_t* read) {
  OVERLAPPED at = At(offset);
  DWORD n = 0;
  if (!ReadFile(file, buffer, static_cast<DWORD>(length), &n, &at)) {
    if (GetLastError() != ERROR_HANDLE_EOF) return LastError("ReadFile");
    n = 0;
  }
  *read = n;
  return Status{};
}

Status Truncate(FileHandle file, uint64_t length) {
  FILE_END_OF_FILE_INFO end{};
  end.EndOfFile.QuadPart = static_cast<LONGLONG>(length);
  if (!SetFileInformationByHandle(file, FileEndOfFileInfo, &end, sizeof end)) {
    return LastError("SetFileInformationByHandle");
  }
  return Status{};
}

}  // namespace loop_lock
