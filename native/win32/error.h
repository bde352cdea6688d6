// Win32 errors in the numbering Status uses (lock_core.h): the one place
// where a GetLastError() code becomes an errno-style name, as libuv's
// uv_translate_sys_error does for Node's fs.
#ifndef LOOP_LOCK_WIN32_ERROR_H_
#define LOOP_LOCK_WIN32_ERROR_H_

#include "../lock_core.h"

namespace loop_lock {

// The Status error for a Win32 error code.
int TranslateError(unsigned long win32_error);

// A Status for the calling thread's GetLastError(), naming `syscall`.
Status LastError(const char* syscall);

}  // namespace loop_lock

#endif  // LOOP_LOCK_WIN32_ERROR_H_
