#!/usr/bin/env node
// Cross-compiles the addon with Zig for the targets no machine here runs
// natively, and records them in prebuilds.json (`npm run prebuild:darwin`,
// `npm run prebuild:musl`; `npm run prebuilds` builds every target):
//
//   node scripts/prebuild-zig.mjs darwin          prebuilds/darwin-{x64,arm64}/loop-lock.node, macOS 11.0 and later
//   node scripts/prebuild-zig.mjs musl            prebuilds/linux-{x64,arm64}/loop-lock.musl.node
//   node scripts/prebuild-zig.mjs darwin --out D  only compile, into D (CI: a change that breaks macOS fails)
//
// Zig comes from the npm registry (scripts/lib/zig.mjs). The addon includes
// uv.h, so Node's full headers come from the official Node package's
// include/.
//
// libc++ is linked statically, so the addon needs only the system's C
// library: libSystem on macOS, libc.so on musl. On macOS Node's functions
// are looked up in the process that loads the addon (-undefined
// dynamic_lookup), as node-gyp links them; on musl a version script keeps
// libc++'s symbols out of the dynamic table, so only the two entry points
// Node looks for are exported.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cache, headersNode } from './lib/npm-cache.mjs';
import { root } from './lib/repo.mjs';
import { run } from './lib/run.mjs';
import { zig } from './lib/zig.mjs';

const MACOS_MIN = '11.0';

const TARGETS = {
  darwin: [
    { arch: 'x64', triple: `x86_64-macos.${MACOS_MIN}`, file: 'darwin-x64/loop-lock.node' },
    { arch: 'arm64', triple: `aarch64-macos.${MACOS_MIN}`, file: 'darwin-arm64/loop-lock.node' },
  ],
  musl: [
    { arch: 'x64', triple: 'x86_64-linux-musl', file: 'linux-x64/loop-lock.musl.node' },
    { arch: 'arm64', triple: 'aarch64-linux-musl', file: 'linux-arm64/loop-lock.musl.node' },
  ],
};

const EXPORTS_SCRIPT = `{
  global: napi_register_module_v1; node_api_module_get_api_version_v1;
  local: *;
};
`;

// gyp's name for each target's OS, as binding.gyp's conditions test it.
const GYP_OS = { darwin: 'mac', musl: 'linux' };

/**
 * The sources and defines of binding.gyp for `os`, so that this build and
 * node-gyp's compile the same files: the common ones and those of every
 * condition that holds there (`OS == 'x'`, `OS != 'x'`). The conditions'
 * defines stay out (glibc's _FORTIFY_SOURCE means nothing to musl).
 * binding.gyp is Python's syntax; its comments are whole lines, the rest is
 * JSON.
 */
function gypTarget(os) {
  const text = readFileSync(join(root, 'binding.gyp'), 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n');
  const target = JSON.parse(text).targets[0];
  const holds = (condition) => {
    const match = /^OS (==|!=) '(\w+)'$/.exec(condition);
    if (match === null) throw new Error(`binding.gyp: a condition this script cannot read: ${condition}`);
    return (GYP_OS[os] === match[2]) === (match[1] === '==');
  };
  const sources = [...target.sources];
  for (const [condition, settings] of target.conditions) {
    if (holds(condition)) sources.push(...(settings.sources ?? []));
  }
  return { sources, defines: target.defines };
}

function compile(os, { triple }, output, work) {
  const { sources, defines } = gypTarget(os);
  const nodeInclude = join(headersNode(), 'include', 'node');
  const addonApi = join(root, 'node_modules', 'node-addon-api');
  const platformFlags =
    os === 'darwin'
      ? ['-Wl,-undefined,dynamic_lookup', '-Wl,-install_name,loop-lock.node']
      : ['-Wl,-z,relro,-z,now', `-Wl,--version-script=${join(work, 'exports.map')}`];
  const args = [
    'c++',
    '-target',
    triple,
    '-std=c++17',
    '-O2',
    '-fvisibility=hidden',
    '-Wall',
    '-Wextra',
    ...defines.map((define) => `-D${define}`),
    '-shared',
    '-fPIC',
    '-s',
    // Paths of this machine stay out of the bytes.
    `-ffile-prefix-map=${root}=.`,
    `-ffile-prefix-map=${cache}=/cache`,
    '-I',
    addonApi,
    '-I',
    nodeInclude,
    ...platformFlags,
    ...sources,
    '-o',
    output,
  ];
  const result = zig(args, { cwd: root });
  if (result.stderr.trim()) process.stderr.write(result.stderr);
  console.log(`prebuild-zig: ${triple} in ${result.seconds} s`);
}

function main() {
  const [os, flag, outDir] = process.argv.slice(2);
  if (!(os in TARGETS) || (flag !== undefined && (flag !== '--out' || !outDir))) {
    console.error('usage: prebuild-zig.mjs darwin|musl [--out DIR]');
    process.exit(2);
  }
  const work = join(root, 'build', `zig-${os}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'exports.map'), EXPORTS_SCRIPT);
  for (const target of TARGETS[os]) {
    const built = join(work, target.file.replace('/', '-'));
    compile(os, target, built, work);
    const destination = join(outDir ?? join(root, 'prebuilds'), target.file);
    mkdirSync(dirname(destination), { recursive: true });
    copyFileSync(built, destination);
  }
  rmSync(work, { recursive: true, force: true });
  // Check what was made as check:prebuilds does; record it when it is a prebuild.
  const files = TARGETS[os].map((target) => target.file);
  const prebuilds = join(root, 'scripts', 'prebuilds.mjs');
  const step = outDir ? ['inspect', outDir, ...files] : ['record', os];
  run(process.execPath, [prebuilds, ...step], { stdio: 'inherit' });
  if (!outDir) run(process.execPath, [prebuilds, 'check', ...files], { stdio: 'inherit' });
}

main();
