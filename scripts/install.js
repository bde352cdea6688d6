#!/usr/bin/env node
// The package's install script. Linux and macOS lock with flock(), Windows
// with LockFileEx: there node-gyp-build keeps a fitting prebuild (it loads
// it in a child process to see) or compiles the addon from source when it
// fails to load. Elsewhere there is nothing to build, and compiling would
// fail the whole install, while loop-lock itself still imports and throws
// UnsupportedPlatformError when called.
if (process.platform === 'linux' || process.platform === 'darwin' || process.platform === 'win32') {
  // node-gyp-build tells musl only by /etc/alpine-release or LIBC: name this
  // process's C library for it and the child that loads the prebuild, as
  // loop-lock does when it loads (dist/libc.js; absent in a checkout
  // before its first build, where the glibc guess stands).
  if (process.platform === 'linux' && !process.env.LIBC) {
    try {
      process.env.LIBC = require('../dist/libc.js').libc();
    } catch {}
  }
  require('node-gyp-build/bin.js');
}
