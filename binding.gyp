{
  "targets": [
    {
      "target_name": "loop_lock",
      "sources": ["native/lock_core.cc", "native/lock_file.cc", "native/waiter.cc", "native/binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_ENABLE_MAYBE"
      ],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,-z,relro,-z,now"],
      "conditions": [
        ["OS == 'mac'", {
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
          }
        }],
        ["OS == 'linux'", {
          "defines": ["_FORTIFY_SOURCE=2"]
        }]
      ]
    }
  ]
}
