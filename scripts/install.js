#!/usr/bin/env node
// The package's install script. Only Linux and macOS have flock(): elsewhere
// there is nothing to build, and compiling would fail the whole install,
// while loop-lock itself still imports and throws UnsupportedPlatformError
// when called. On Linux and macOS, node-gyp-build keeps a fitting prebuild
// or compiles the addon from source.
if (process.platform === 'linux' || process.platform === 'darwin') {
  require('node-gyp-build/bin.js');
}
