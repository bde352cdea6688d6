// Registers qemu-user with binfmt_misc for aarch64 ELF files, with the F
// flag (the kernel keeps the interpreter open), so that an arm64 process and
// every process it spawns run under qemu. Needs root and qemu-user.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function ensureArm64Binfmt() {
  const fs = '/proc/sys/fs/binfmt_misc';
  if (!existsSync(join(fs, 'register')) && spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', fs]).status !== 0) {
    throw new Error(`cannot mount binfmt_misc on ${fs} (needs root)`);
  }
  const entry = join(fs, 'qemu-aarch64');
  if (existsSync(entry) && readFileSync(entry, 'utf8').startsWith('enabled')) return;
  const found = spawnSync('sh', ['-c', 'command -v qemu-aarch64-static || command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('qemu-aarch64 not found: apt-get install qemu-user');
  const qemu = realpathSync(found);
  const magic = '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00';
  const mask = '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';
  writeFileSync(join(fs, 'register'), `:qemu-aarch64:M::${magic}:${mask}:${qemu}:F`);
  console.log(`registered ${qemu} for aarch64 ELF files with binfmt_misc`);
}
