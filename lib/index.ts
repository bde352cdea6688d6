// The declarations name Node's globals (URL, AbortSignal, NodeJS.Signals),
// so they bring Node's types along: a consumer whose tsconfig lists no
// "types" (TypeScript 7 then loads none) would otherwise not find them.
/// <reference types="node" preserve="true" />
export {
  AlreadyLockedError,
  LockError,
  type LockErrorDetails,
  LockParseError,
  UnsupportedPlatformError,
} from './errors.js';
export { FileLock } from './file-lock.js';
export { FileLockGuard, type FileLockMode } from './file-lock-guard.js';
export type { FileLockWaitOptions } from './file-lock-wait.js';
export { type GuardState, LockGuard } from './guard.js';
export { LoopLock } from './loop-lock.js';
export { type LockMetadata, MAX_METADATA_BYTES } from './metadata.js';
export {
  type AcquireOptions,
  LOCK_FILE,
  type LockOptions,
  type NetworkFilesystemPolicy,
  type ReadOptions,
  type WatchOptions,
} from './options.js';
export type { LockStatus } from './status.js';
