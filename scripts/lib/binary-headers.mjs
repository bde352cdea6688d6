// What check:prebuilds reads from a prebuild's headers without a tool: the
// dynamic section of an ELF file, the load commands and code signature of a
// Mach-O file. Only 64-bit little-endian files: every target shipped is one.
import { createHash } from 'node:crypto';

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const MACHO_MAGIC_64 = 0xfeedfacf;

export const isElf = (bytes) => bytes.subarray(0, 4).equals(ELF_MAGIC);
export const isMachO = (bytes) => bytes.length >= 32 && bytes.readUInt32LE(0) === MACHO_MAGIC_64;
export const isPe = (bytes) => bytes.subarray(0, 2).toString('latin1') === 'MZ';

const cString = (bytes, offset) => bytes.toString('latin1', offset, bytes.indexOf(0, offset));

// ELF dynamic tags read here (elf.h).
const DT = { NEEDED: 1, FLAGS: 30, FLAGS_1: 0x6ffffffb, VERSYM: 0x6ffffff0, VERNEED: 0x6ffffffe, VERDEF: 0x6ffffffc };
const DF_BIND_NOW = 0x8;
const DF_1_NOW = 0x1;
const SHT_DYNAMIC = 6;
const PT_GNU_RELRO = 0x6474e552;

/**
 * An ELF file's machine, the libraries it needs, whether it uses symbol
 * versions, binds every symbol at load (BIND_NOW) and has a read-only
 * relocation segment (RELRO).
 */
export function elfDynamic(bytes) {
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const machine = little ? bytes.readUInt16LE(18) : bytes.readUInt16BE(18);
  const result = { is64, little, machine, needed: [], versioned: false, bindNow: false, relro: false };
  if (!is64 || !little) return result;
  const phoff = Number(bytes.readBigUInt64LE(32));
  const shoff = Number(bytes.readBigUInt64LE(40));
  const [phentsize, phnum, shentsize, shnum] = [54, 56, 58, 60].map((at) => bytes.readUInt16LE(at));
  for (let i = 0; i < phnum; i++) {
    if (bytes.readUInt32LE(phoff + i * phentsize) === PT_GNU_RELRO) result.relro = true;
  }
  const section = (index) => {
    const at = shoff + index * shentsize;
    return {
      type: bytes.readUInt32LE(at + 4),
      offset: Number(bytes.readBigUInt64LE(at + 24)),
      size: Number(bytes.readBigUInt64LE(at + 32)),
      link: bytes.readUInt32LE(at + 40),
    };
  };
  for (let index = 0; index < shnum; index++) {
    const dynamic = section(index);
    if (dynamic.type !== SHT_DYNAMIC) continue;
    const strings = section(dynamic.link);
    for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.size; at += 16) {
      const tag = Number(bytes.readBigUInt64LE(at));
      const value = Number(bytes.readBigUInt64LE(at + 8));
      if (tag === DT.NEEDED) result.needed.push(cString(bytes, strings.offset + value));
      if (tag === DT.VERSYM || tag === DT.VERNEED || tag === DT.VERDEF) result.versioned = true;
      if ((tag === DT.FLAGS && value & DF_BIND_NOW) || (tag === DT.FLAGS_1 && value & DF_1_NOW)) result.bindNow = true;
    }
  }
  return result;
}

// Mach-O load commands read here (mach-o/loader.h).
const LC = {
  LOAD_DYLIB: 0xc,
  ID_DYLIB: 0xd,
  LOAD_WEAK_DYLIB: 0x80000018,
  REEXPORT_DYLIB: 0x8000001f,
  LAZY_LOAD_DYLIB: 0x20,
  LOAD_UPWARD_DYLIB: 0x80000023,
  CODE_SIGNATURE: 0x1d,
  BUILD_VERSION: 0x32,
  VERSION_MIN_MACOSX: 0x24,
};
const LOADS = new Set([LC.LOAD_DYLIB, LC.LOAD_WEAK_DYLIB, LC.REEXPORT_DYLIB, LC.LAZY_LOAD_DYLIB, LC.LOAD_UPWARD_DYLIB]);
export const MH_DYLIB = 6;
const PLATFORM_MACOS = 1;

// X.Y.Z packed as xxxx.yy.zz nibbles.
const version = (packed) => `${packed >>> 16}.${(packed >>> 8) & 0xff}${packed & 0xff ? `.${packed & 0xff}` : ''}`;

/**
 * A 64-bit Mach-O file's CPU type, file type, the dylibs it loads, its
 * install name, the macOS version it needs (LC_BUILD_VERSION or the older
 * LC_VERSION_MIN_MACOSX) and where its code signature lies.
 */
export function machO(bytes) {
  const result = {
    cputype: bytes.readUInt32LE(4),
    filetype: bytes.readUInt32LE(12),
    dylibs: [],
    installName: null,
    platform: null,
    minos: null,
    signature: null,
  };
  const ncmds = bytes.readUInt32LE(16);
  let at = 32;
  for (let i = 0; i < ncmds; i++) {
    const cmd = bytes.readUInt32LE(at);
    const size = bytes.readUInt32LE(at + 4);
    if (LOADS.has(cmd)) result.dylibs.push(cString(bytes, at + bytes.readUInt32LE(at + 8)));
    if (cmd === LC.ID_DYLIB) result.installName = cString(bytes, at + bytes.readUInt32LE(at + 8));
    if (cmd === LC.BUILD_VERSION) {
      result.platform = bytes.readUInt32LE(at + 8);
      result.minos = version(bytes.readUInt32LE(at + 12));
    }
    if (cmd === LC.VERSION_MIN_MACOSX) {
      result.platform = PLATFORM_MACOS;
      result.minos = version(bytes.readUInt32LE(at + 8));
    }
    if (cmd === LC.CODE_SIGNATURE) result.signature = { offset: bytes.readUInt32LE(at + 8), size: bytes.readUInt32LE(at + 12) };
    at += size;
  }
  result.macOS = result.platform === PLATFORM_MACOS;
  return result;
}

// Code signing blobs (big-endian; Apple's cs_blobs.h).
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CS_ADHOC = 0x2;
const HASHES = { 1: 'sha1', 2: 'sha256' };

/**
 * Checks a Mach-O file's embedded signature as the kernel does when it
 * maps the code: every page up to the code limit hashes to the code
 * directory's slot. arm64 macOS refuses to run code without a valid
 * signature, and an ad-hoc one (no certificate) is what a linker makes.
 * Returns what is wrong, or null.
 */
export function codeSignatureProblem(bytes, signature) {
  if (signature === null) return 'no code signature (LC_CODE_SIGNATURE)';
  const blob = bytes.subarray(signature.offset, signature.offset + signature.size);
  if (blob.length < 12 || blob.readUInt32BE(0) !== CSMAGIC_EMBEDDED_SIGNATURE) return 'no embedded signature superblob';
  const count = blob.readUInt32BE(8);
  const directories = [];
  for (let i = 0; i < count; i++) {
    const offset = blob.readUInt32BE(12 + i * 8 + 4);
    if (blob.readUInt32BE(offset) === CSMAGIC_CODEDIRECTORY) directories.push(blob.subarray(offset));
  }
  if (directories.length === 0) return 'no code directory in the signature';
  for (const directory of directories) {
    const flags = directory.readUInt32BE(12);
    const hashOffset = directory.readUInt32BE(16);
    const codeSlots = directory.readUInt32BE(28);
    const codeLimit = directory.readUInt32BE(32);
    const hashSize = directory[36];
    const hash = HASHES[directory[37]];
    const pageSize = 2 ** directory[39];
    if (!(flags & CS_ADHOC)) return `code directory flags 0x${flags.toString(16)}: not ad-hoc`;
    if (hash === undefined) return `unknown code directory hash type ${directory[37]}`;
    if (codeLimit !== signature.offset) return `code limit ${codeLimit} is not where the signature starts (${signature.offset})`;
    if (codeSlots !== Math.ceil(codeLimit / pageSize)) return `${codeSlots} code slots for ${codeLimit} bytes of ${pageSize}-byte pages`;
    for (let slot = 0; slot < codeSlots; slot++) {
      const page = bytes.subarray(slot * pageSize, Math.min((slot + 1) * pageSize, codeLimit));
      const expected = directory.subarray(hashOffset + slot * hashSize, hashOffset + (slot + 1) * hashSize);
      if (!createHash(hash).update(page).digest().subarray(0, hashSize).equals(expected)) {
        return `page ${slot} does not match its ${hash} in the code directory`;
      }
    }
  }
  return null;
}
