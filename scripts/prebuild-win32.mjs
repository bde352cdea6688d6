#!/usr/bin/env node
// Cross-compiles the addon for Windows x64 with Debian's MinGW-w64 g++ into
// prebuilds/win32-x64/loop-lock.node, where node-gyp-build finds it, and
// records it in prebuilds.json (`npm run prebuild:win32`; `npm run
// prebuilds` builds every target).
//
// node-gyp cannot drive this build: it wants MSVC and Node's node.lib. So
// the import library is made here from node-api-headers' def file, plus the
// few libuv functions the addon calls (node.exe exports libuv too), as a
// delay-load library: its imports name node.exe, and the hook in
// native/win32/delay_load_hook.cc binds them to whatever executable loaded
// the addon, so a renamed node.exe or Electron loads it. Linked -static, so
// the addon needs no MinGW runtime DLL, and without a timestamp, so the
// same sources make the same bytes.
//
// Needs g++-mingw-w64-x86-64 (the posix-threads compiler: napi.h needs
// std::mutex) and mingw-w64's binutils; Node's headers come from npm's
// nodedir, else from beside this Node.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { root } from './lib/repo.mjs';
import { run as runCommand } from './lib/run.mjs';

const require = createRequire(import.meta.url);
const work = join(root, 'build', 'win32-x64');
const output = join(root, 'prebuilds', 'win32-x64', 'loop-lock.node');

// libuv functions the addon calls: the waiter's timers (native/waiter.cc)
// and the error names (native/win32/error.cc). A new call fails to link
// until it is added here.
const LIBUV_IMPORTS = [
  'uv_close',
  'uv_strerror',
  'uv_timer_init',
  'uv_timer_start',
  'uv_timer_stop',
  'uv_translate_sys_error',
  'uv_unref',
];

const SOURCES = [
  'native/lock_core.cc',
  'native/lock_file.cc',
  'native/file_table.cc',
  'native/record.cc',
  'native/delivery.cc',
  'native/waiter.cc',
  'native/blocking_wait.cc',
  'native/watcher.cc',
  'native/no_notifier.cc',
  'native/binding.cc',
  'native/win32/file.cc',
  'native/win32/error.cc',
  'native/win32/lock_owner.cc',
  'native/win32/process.cc',
  'native/win32/delay_load_hook.cc',
];

function nodeHeaders() {
  const candidates = [process.env.npm_config_nodedir, dirname(dirname(process.execPath))]
    .filter(Boolean)
    .map((dir) => join(dir, 'include', 'node'));
  const found = candidates.find((dir) => existsSync(join(dir, 'uv', 'win.h')));
  if (found === undefined) throw new Error(`no Node.js headers with uv/win.h in ${candidates.join(', ')}`);
  return found;
}

const run = (command, args) => runCommand(command, args, { cwd: root, stdio: 'inherit' });

mkdirSync(work, { recursive: true });
mkdirSync(dirname(output), { recursive: true });

const def = readFileSync(require.resolve('node-api-headers/def/node_api.def'), 'utf8').trimEnd();
writeFileSync(join(work, 'node.def'), `${def}\n${LIBUV_IMPORTS.join('\n')}\n`);
const importLibrary = join(work, 'libnode-delay.a');
run('x86_64-w64-mingw32-dlltool', ['-d', join(work, 'node.def'), '-D', 'node.exe', '-y', importLibrary]);

run('x86_64-w64-mingw32-g++-posix', [
  '-std=c++17',
  '-O2',
  '-Wall',
  '-Wextra',
  '-fvisibility=hidden',
  '-DNAPI_VERSION=8',
  '-DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS',
  '-DNODE_ADDON_API_ENABLE_MAYBE',
  '-D_WIN32_WINNT=0x0A00',
  '-DWIN32_LEAN_AND_MEAN',
  '-DNOMINMAX',
  '-I',
  nodeHeaders(),
  '-I',
  require('node-addon-api').include_dir,
  ...SOURCES,
  '-shared',
  '-static',
  '-s',
  '-Wl,--no-insert-timestamp',
  importLibrary,
  '-o',
  output,
]);
console.log(`built ${output}`);

// What it was built from, for check:prebuilds, and its own check (as
// prebuild-linux.mjs does).
run(process.execPath, [join(root, 'scripts', 'prebuilds.mjs'), 'record', 'win32-x64']);
run(process.execPath, [join(root, 'scripts', 'prebuilds.mjs'), 'check', 'win32-x64']);
