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
export type { NetworkFilesystemPolicy } from './filesystem.js';
export { type GuardState, LockGuard } from './guard.js';
export { type AcquireOptions, LoopLock, type LockStatus, type ReadOptions, type WatchOptions } from './loop-lock.js';
export { type LockMetadata, MAX_METADATA_BYTES } from './metadata.js';
export { LOCK_FILE, type LockOptions } from './paths.js';
