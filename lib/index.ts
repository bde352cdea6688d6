export {
  AlreadyLockedError,
  LockError,
  type LockErrorDetails,
  LockParseError,
  UnsupportedPlatformError,
} from './errors.js';
export type { NetworkFilesystemPolicy } from './filesystem.js';
export { type GuardState, LockGuard } from './guard.js';
export { type AcquireOptions, LoopLock, type LockStatus, type ReadOptions } from './loop-lock.js';
export { type LockMetadata, MAX_METADATA_BYTES } from './metadata.js';
export { LOCK_FILE, type LockOptions } from './paths.js';
