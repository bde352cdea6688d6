import { LockError, toLockError } from './errors.js';
import type { Binding, Handle } from './native.js';
import type { NetworkFilesystemPolicy } from './options.js';

/**
 * Where a lock file lives, as far as `flock()` is concerned:
 * - `'local'`: a disk of this host; `flock()` excludes every process here.
 * - `'network'`: NFS, SMB, AFS, Ceph, a cluster or a VM shared-folder
 *   filesystem. `flock()` there may only exclude processes on this host, or
 *   (NFS, SMB) be emulated with POSIX record locks, which belong to the
 *   process instead of the open file and vanish when it closes any
 *   descriptor of the file.
 * - `'fuse'`: a filesystem in user space. Unless it implements locking,
 *   the kernel keeps `flock()` local to the mount, so a process reaching the
 *   same file another way (the directory under a bind mount, another host
 *   under sshfs) does not see the lock.
 */
export type FilesystemKind = 'local' | 'network' | 'fuse';

/** A filesystem's kind and a name for messages (`'nfs'`, `'cifs'`, `'fuse'`, or the raw type). */
export interface FilesystemInfo {
  readonly kind: FilesystemKind;
  readonly name: string;
}

// Linux statfs f_type magic numbers of the filesystems whose flock() is not
// a plain local lock. Everything else is taken as local.
const LINUX_MAGIC: ReadonlyMap<number, FilesystemInfo> = new Map(
  (
    [
      [0x6969, 'network', 'nfs'],
      [0x517b, 'network', 'smb'],
      [0xff534d42, 'network', 'cifs'],
      [0xfe534d42, 'network', 'smb2'],
      [0x01021997, 'network', '9p'],
      [0x5346414f, 'network', 'afs'],
      [0x6b414653, 'network', 'kafs'],
      [0x00c36400, 'network', 'ceph'],
      [0x73757245, 'network', 'coda'],
      [0x564c, 'network', 'ncpfs'],
      [0x0bd00bd0, 'network', 'lustre'],
      [0x47504653, 'network', 'gpfs'],
      [0x19830326, 'network', 'beegfs'],
      [0xaad7aaea, 'network', 'panfs'],
      [0x20030528, 'network', 'orangefs'],
      [0x013111a8, 'network', 'ibrix'],
      [0xbeefdead, 'network', 'snfs'],
      [0x61636673, 'network', 'acfs'],
      [0x7461636f, 'network', 'ocfs2'],
      [0x01161970, 'network', 'gfs2'],
      [0xa501fcf5, 'network', 'vxfs'],
      [0x786f4256, 'network', 'vboxsf'],
      [0xbacbacbc, 'network', 'vmhgfs'],
      [0x7c7c6673, 'network', 'prl_fs'],
      [0x65735546, 'fuse', 'fuse'],
    ] as const
  ).map(([magic, kind, name]) => [magic, { kind, name }]),
);

// macOS f_fstypename values of network filesystems; FUSE ones are told by name.
const MACOS_NETWORK: ReadonlySet<string> = new Set(['nfs', 'smbfs', 'afpfs', 'webdav', 'ftp', 'cifs', 'afs']);

/**
 * Classifies what `fstatfs()` reported: a Linux magic number (`f_type`) or
 * a macOS type name (`f_fstypename`); on Windows the volume's type name,
 * prefixed `remote:` when it is a network share or a remote drive.
 */
export function classifyFilesystem(type: number | string): FilesystemInfo {
  if (typeof type === 'string') {
    if (type.startsWith('remote:')) return { kind: 'network', name: `${type.slice('remote:'.length)}, remote` };
    if (type.includes('fuse')) return { kind: 'fuse', name: type };
    return { kind: MACOS_NETWORK.has(type) ? 'network' : 'local', name: type };
  }
  const magic = type >>> 0;
  return LINUX_MAGIC.get(magic) ?? { kind: 'local', name: `0x${magic.toString(16)}` };
}

/** What is known of a lock path's filesystem, and whether its warning was given. */
interface Sighting {
  readonly info: FilesystemInfo;
  readonly readAt: number;
  warned: boolean;
}

// A workspace seldom moves between filesystems under a running process,
// but it can (a mount over .ralph, a symlinked directory pointed elsewhere),
// so an answer is trusted for a second: then the next call on that path
// reads it again, one fstatfs a second at most, nothing next to the calls.
const RECHECK_MS = 1000;
// Lock paths come from callers: remember the ones read last, per thread (a
// worker has its own copy of this module).
const MAX_SIGHTINGS = 64;
const sightings = new Map<string, Sighting>();

/** What was read for `lockPath` less than RECHECK_MS ago. */
function recentSighting(lockPath: string): Sighting | undefined {
  const sighting = sightings.get(lockPath);
  return sighting !== undefined && performance.now() - sighting.readAt < RECHECK_MS ? sighting : undefined;
}

/**
 * Records a fresh reading, as the newest entry (the oldest goes when full).
 * A warning given stays given while the filesystem is the same one.
 */
function remember(lockPath: string, info: FilesystemInfo): Sighting {
  const previous = sightings.get(lockPath);
  sightings.delete(lockPath);
  if (sightings.size >= MAX_SIGHTINGS) sightings.delete(sightings.keys().next().value as string);
  const sighting = {
    info,
    readAt: performance.now(),
    warned: previous?.warned === true && previous.info.name === info.name,
  };
  sightings.set(lockPath, sighting);
  return sighting;
}

/**
 * Whether `checkFilesystem` would do nothing for `lockPath`: the policy
 * allows everything, the filesystem is known to be local, or it is known not
 * to be and the one warning has been given.
 */
export function filesystemCleared(lockPath: string, policy: NetworkFilesystemPolicy): boolean {
  if (policy === 'allow') return true;
  const sighting = recentSighting(lockPath);
  if (sighting === undefined) return false;
  return sighting.info.kind === 'local' || (policy === 'warn' && sighting.warned);
}

/**
 * Applies the policy to the lock file open as `handle`, before it is locked:
 * `'error'` refuses a network or FUSE filesystem with code `'ENETFS'`,
 * `'warn'` says so once per lock path (and thread) in a process warning,
 * `'allow'` does not look. The filesystem is read with `fstatfs` unless it
 * was read for this path less than a second ago.
 */
export function checkFilesystem(
  binding: Binding,
  handle: Handle,
  lockPath: string,
  policy: NetworkFilesystemPolicy,
): void {
  if (policy === 'allow') return;
  let sighting = recentSighting(lockPath);
  if (sighting === undefined) {
    let info: FilesystemInfo;
    try {
      info = classifyFilesystem(binding.filesystem(handle));
    } catch (error) {
      throw toLockError(error, lockPath);
    }
    sighting = remember(lockPath, info);
  }
  const info = sighting.info;
  if (info.kind === 'local') return;
  const risk =
    info.kind === 'fuse'
      ? 'flock() may be local to this mount, unseen by processes that reach the file another way'
      : process.platform === 'win32'
        ? "the server's byte-range lock may be weakened by client caching, or not reach other hosts' clients"
        : 'flock() may not exclude processes on other hosts, or may be emulated with POSIX record locks';
  if (policy === 'error') {
    throw new LockError(
      `ENETFS: lock '${lockPath}' is on a ${info.kind} filesystem (${info.name}), where ${risk}; ` +
        `keep the lock on a local disk or pass { networkFilesystem: 'allow' }`,
      { code: 'ENETFS', path: lockPath },
    );
  }
  if (sighting.warned) return;
  sighting.warned = true;
  process.emitWarning(
    `Loop lock '${lockPath}' is on a ${info.kind} filesystem (${info.name}), where ${risk}. ` +
      `Keep the lock on a local disk, or pass { networkFilesystem: 'allow' } (or 'error') to decide.`,
    { type: 'Warning', code: 'LOOP_LOCK_NETWORK_FS' },
  );
}
