#include "error.h"

#include <uv.h>
#include <windows.h>

namespace loop_lock {

int TranslateError(unsigned long win32_error) {
  // Mostly libuv's own table, so that errors read as Node's fs reports
  // them, except where a lock file's failures deserve the POSIX name the
  // same failure has on Linux: ERROR_ACCESS_DENIED is EACCES (libuv: EPERM)
  // and ERROR_INVALID_NAME EINVAL (libuv: ENOENT). ERROR_LOCK_VIOLATION
  // ("held") never gets here: TryLock reports it as a lock not taken.
  switch (win32_error) {
    case ERROR_ACCESS_DENIED:
    case ERROR_NOACCESS:
    case ERROR_CANT_ACCESS_FILE:
      return -UV_EACCES;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
    case ERROR_INVALID_DRIVE:
      return -UV_ENOENT;
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
    case ERROR_INVALID_PARAMETER:
    case ERROR_NO_UNICODE_TRANSLATION:
      return -UV_EINVAL;
    case ERROR_DIRECTORY:
      return -UV_ENOTDIR;
    case ERROR_FILENAME_EXCED_RANGE:
    case ERROR_BUFFER_OVERFLOW:
      return -UV_ENAMETOOLONG;
    case ERROR_CANT_RESOLVE_FILENAME:
      return -UV_ELOOP;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
      return -UV_ENOSPC;
    case ERROR_WRITE_PROTECT:
      return -UV_EROFS;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
      return -UV_EBUSY;
    case ERROR_INVALID_HANDLE:
      return -UV_EBADF;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
      return -UV_ENOMEM;
    case ERROR_TOO_MANY_OPEN_FILES:
      return -UV_EMFILE;
    case ERROR_NOT_SUPPORTED:
    case ERROR_INVALID_FUNCTION:
      return -UV_ENOTSUP;
    case ERROR_CRC:
    case ERROR_IO_DEVICE:
    case ERROR_NOT_READY:
      return -UV_EIO;
    default: {
      const int translated = uv_translate_sys_error(static_cast<int>(win32_error));
      return translated < 0 ? -translated : -UV_EIO;
    }
  }
}

Status LastError(const char* syscall) {
  return Status{TranslateError(GetLastError()), syscall};
}

const char* ErrorText(int error) { return uv_strerror(-error); }

}  // namespace loop_lock
