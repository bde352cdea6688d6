#!/usr/bin/env node
// The package's install script. Linux and macOS lock with flock(), Windows
// with LockFileEx: there node-gyp-build keeps a fitting prebuild or compiles
// the addon from source. Elsewhere there is nothing to build, and compiling
// would fail the whole install, while loop-lock itself still imports and
// throws UnsupportedPlatformError when called.
if (process.platform === 'linux' || process.platform === 'darwin' || process.platform === 'win32') {
  require('node-gyp-build/bin.js');
}
