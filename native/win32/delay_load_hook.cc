// For builds that delay-load their Node-API imports (scripts/prebuild-win32.mjs):
// the imports name "node.exe", but the functions live in whatever executable
// loaded the addon, a renamed node.exe or Electron included. When the
// loader asks for node.exe, hand it that executable's own module instead.
// node-gyp compiles its own copy of this hook into MSVC builds.
#include <windows.h>

#include <delayimp.h>

namespace {

FARPROC WINAPI LoadRunningExecutable(unsigned event, PDelayLoadInfo info) {
  if (event != dliNotePreLoadLibrary || _stricmp(info->szDll, "node.exe") != 0) return nullptr;
  return reinterpret_cast<FARPROC>(GetModuleHandleW(nullptr));
}

}  // namespace

PfnDliHook __pfnDliNotifyHook2 = LoadRunningExecutable;
