{
  "targets": [
    {
      "target_name": "loop_lock",
      "sources": ["native/lock_core.cc", "native/lock_file.cc", "native/file_table.cc", "native/record.cc", "native/delivery.cc", "native/waiter.cc", "native/blocking_wait.cc", "native/watcher.cc", "native/binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # The lowest Node-API version whose functions the addon calls: the
      # waiter's napi_add_async_cleanup_hook needs 8 (env cleanup hooks 3,
      # the uv loop 2). A call above it fails to compile, which is how this
      # number stays true; every Node.js from 20 up has Node-API 9.
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_ENABLE_MAYBE"
      ],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,-z,relro,-z,now"],
      "conditions": [
        ["OS != 'win'", {
          "sources": ["native/posix/file.cc", "native/posix/lock_owner.cc", "native/posix/proc_holder.cc", "native/posix/process.cc"]
        }],
        # MSVC, building from source on Windows. node-gyp adds its own
        # delay-load hook (native/win32/delay_load_hook.cc is the MinGW
        # prebuild's copy of it, see scripts/prebuild-win32.mjs).
        ["OS == 'win'", {
          "sources": ["native/win32/file.cc", "native/win32/error.cc", "native/win32/lock_owner.cc", "native/win32/process.cc"],
          "defines": ["_WIN32_WINNT=0x0A00", "WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "msvs_settings": {
            "VCCLCompilerTool": {
              "AdditionalOptions": ["/std:c++17", "/guard:cf"]
            },
            "VCLinkerTool": {
              "AdditionalOptions": ["/guard:cf"]
            }
          }
        }],
        ["OS == 'mac'", {
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
          }
        }],
        # The environment's notifier (native/notifier.h): inotify on Linux,
        # none elsewhere, where waits and watch() poll.
        ["OS == 'linux'", {
          "sources": ["native/linux/inotify.cc", "native/linux/notifier.cc"],
          "defines": ["_FORTIFY_SOURCE=2"]
        }],
        ["OS != 'linux'", {
          "sources": ["native/no_notifier.cc"]
        }]
      ]
    }
  ]
}
