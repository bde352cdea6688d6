#!/usr/bin/env node
'use strict';

// npm run test:sanitize [-- test/FILE.test.js ...]: builds the addon with
// AddressSanitizer (leak checking included) and UndefinedBehaviorSanitizer,
// and runs the test suite (or the files given) against that build. Linux
// with gcc only.
//
// The sanitized build lives in a copy of the package (build-sanitize/pkg:
// binding.gyp, native/, dist/, test/, scripts/, built with sanitizer
// flags), so the regular build/ is left alone and node-gyp-build in the
// copy finds the sanitized addon. Node itself is not built with ASan, so the ASan runtime is
// preloaded into every process the tests start (Node children and tools
// alike); leaks are looked for in Node processes only, and reported only
// from allocations made by the addon (see writeSuppressions). Any sanitizer
// report fails the run.

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const root = path.join(__dirname, '..');
const work = path.join(root, 'build-sanitize');
const pkg = path.join(work, 'pkg');
const logDir = path.join(work, 'logs');

// Passed to node-gyp's make through the environment: gyp puts CXXFLAGS and
// LDFLAGS after binding.gyp's own flags, so -O1 wins over -O3, and
// _FORTIFY_SOURCE (whose checked string functions get in ASan's way) is
// undefined again after binding.gyp defines it. A test build, like npm
// test's: LOOP_LOCK_TEST_EXPORTS adds the exports only tests call.
const SANITIZE = '-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1';
const BUILD_ENV = {
  CXXFLAGS: `${SANITIZE} -U_FORTIFY_SOURCE -DLOOP_LOCK_TEST_EXPORTS`,
  LDFLAGS: '-fsanitize=address,undefined',
};

function preparePackage() {
  fs.rmSync(pkg, { recursive: true, force: true });
  fs.mkdirSync(pkg, { recursive: true });
  for (const entry of ['native', 'dist', 'test', 'scripts']) {
    fs.cpSync(path.join(root, entry), path.join(pkg, entry), { recursive: true });
  }
  for (const file of ['package.json', 'binding.gyp', 'README.md']) fs.copyFileSync(path.join(root, file), path.join(pkg, file));
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
}

// LeakSanitizer reports what no pointer in memory it scans reaches at exit.
// Node and V8 leave plenty of that behind on purpose, so allocation stacks
// are cut to three return addresses (malloc_context_size; inlined frames
// share one) and those that reach the Node binary, the C runtime or the
// dynamic loader are suppressed. An allocation of the addon's own, even one
// N-API callback deep (new, the callback, node-addon-api's wrapper), keeps
// the Node binary out of its three addresses and is reported.
function writeSuppressions() {
  const file = path.join(work, 'lsan.supp');
  const lines = [
    `leak:${fs.realpathSync(process.execPath)}`,
    'leak:libc.so',
    'leak:ld-linux',
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function writeNodeOptions() {
  const binary = path.basename(fs.realpathSync(process.execPath));
  fs.writeFileSync(path.join(work, `asan-${binary}.options`), 'detect_leaks=1\n');
  return path.join(work, 'asan-%b.options');
}

function runtime(name) {
  const file = execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(file)) throw new Error(`gcc has no ${name}: install libasan8 and libubsan1 (see scripts/test-sanitize.js)`);
  return file;
}

async function main() {
  if (process.platform !== 'linux') {
    console.log('test:sanitize runs on Linux only (gcc sanitizers); skipped');
    return;
  }
  const started = Date.now();
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  preparePackage();
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
  execFileSync(process.execPath, [nodeGyp, 'rebuild'], {
    cwd: pkg,
    stdio: 'inherit',
    env: { ...process.env, ...BUILD_ENV },
  });
  const built = (Date.now() - started) / 1000;

  const env = {
    ...process.env,
    LD_PRELOAD: runtime('libasan.so'),
    // Each process writes its report to its own file: a report in a child
    // process's stderr could be swallowed by the test that started it.
    ASAN_OPTIONS: [
      // Tools the tests run (git, sed, python3, ...) inherit the preload;
      // their exit-time leaks are theirs. Leak checking is turned on for
      // Node processes only, by a file named after the binary (%b).
      'detect_leaks=0',
      `include_if_exists=${writeNodeOptions()}`,
      'abort_on_error=0',
      'exitcode=86',
      `log_path=${path.join(logDir, 'asan')}`,
      // Node installs its own handlers; ASan must not replace them.
      'allow_user_segv_handler=1',
      'handle_segv=0',
      'detect_odr_violation=0',
    ].join(':'),
    LSAN_OPTIONS: `suppressions=${writeSuppressions()}:malloc_context_size=3:print_suppressions=0`,
    UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${path.join(logDir, 'ubsan')}`,
  };
  runtime('libubsan.so');
  const chosen = process.argv.slice(2);
  const tests =
    chosen.length > 0
      ? chosen
      : fs
          .readdirSync(path.join(pkg, 'test'))
          .filter((name) => name.endsWith('.test.js'))
          .map((name) => path.join('test', name));
  const { status, inline } = await runTests(tests, env);

  const logs = fs.readdirSync(logDir).map((name) => path.join(logDir, name));
  for (const log of logs) {
    console.log(`\n==== ${path.relative(root, log)}`);
    console.log(fs.readFileSync(log, 'utf8'));
  }
  const notices = logs.filter((log) => isOnlyUnsuspendedNotice(fs.readFileSync(log, 'utf8')));
  const reports = logs.filter((log) => !notices.includes(log));
  const total = (Date.now() - started) / 1000;
  console.log(
    `test:sanitize: build ${built.toFixed(0)} s, total ${total.toFixed(0)} s; ` +
      `${reports.length + inline} sanitizer report(s); tests ${status === 0 ? 'passed' : 'failed'}` +
      (notices.length > 0 ? `; ${notices.length} process(es) whose threads LeakSanitizer could not stop` : ''),
  );
  if (status !== 0 || reports.length + inline > 0) process.exitCode = 1;
}

// LeakSanitizer stops a process's threads through /proc before it scans;
// in a child run in its own pid namespace over its parent's /proc (the
// holder tests' fallback check) it cannot, says so, and reports nothing
// else. That notice alone is not a finding: a leak would still be reported.
function isOnlyUnsuspendedNotice(text) {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  return (
    lines.length > 0 && lines.every((line) => /^==\d+==Running thread \d+ was not suspended\. False leaks are possible\.$/.test(line))
  );
}

// Runs the test files, echoing their output and counting the sanitizer
// reports in it: a runtime without log_path support writes to stderr, which
// the test runner passes on.
function runTests(tests, env) {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...tests], {
    cwd: pkg,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let inline = 0;
  const scan = (stream, sink) =>
    readline.createInterface({ input: stream }).on('line', (line) => {
      if (/runtime error:|ERROR: (Address|Leak)Sanitizer/.test(line)) inline++;
      sink.write(`${line}\n`);
    });
  scan(child.stdout, process.stdout);
  scan(child.stderr, process.stderr);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, inline }));
  });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
