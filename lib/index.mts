// The declarations name Node's globals (URL, AbortSignal, NodeJS.Signals),
// so they bring Node's types along: a consumer whose tsconfig lists no
// "types" (TypeScript 7 then loads none) would otherwise not find them.
/// <reference types="node" preserve="true" />
// The ES module entry re-exports the CommonJS build rather than being a
// second build of it: a second copy would keep module state of its own (the
// guards this thread holds, the one-time release warning), so a guard taken
// through `import` would be invisible to code that used `require`. Values are
// named one by one because `export *` from CommonJS would also export
// `__esModule`; test/esm.test.js checks this list against index.ts.
export type * from './index.js';
export {
  AlreadyLockedError,
  FileLock,
  FileLockGuard,
  LOCK_FILE,
  LockError,
  LockGuard,
  LockParseError,
  LoopLock,
  MAX_METADATA_BYTES,
  UnsupportedPlatformError,
} from './index.js';
