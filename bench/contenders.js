'use strict';

// What each Node contender does for each benchmark operation. Every peer does
// the same work as loop-lock: open the lock file, lock it, write the same
// metadata record (row 1) or read and parse the holder's (rows 2 and 4),
// unlock, close. Only the locking calls differ, and those are each
// library's own API, used as its README shows.

const fs = require('node:fs');
const path = require('node:path');

const PROMPT = 'implement the benchmark';
const LOCK_FILE = path.join('.ralph', 'loop.lock');
const { O_RDWR, O_CREAT, O_RDONLY } = fs.constants;

/** The record loop-lock writes, as serde_json's to_string_pretty lays it out. */
function record() {
  return JSON.stringify({ pid: process.pid, started: new Date().toISOString(), prompt: PROMPT }, null, 2);
}

function writeRecord(fd) {
  const text = record();
  fs.writeSync(fd, text, 0);
  fs.ftruncateSync(fd, Buffer.byteLength(text));
}

function parseRecord(text) {
  const value = JSON.parse(text);
  return { pid: value.pid, started: new Date(value.started), prompt: value.prompt };
}

function readRecord(fd) {
  const buffer = Buffer.allocUnsafe(4096);
  const length = fs.readSync(fd, buffer, 0, buffer.length, 0);
  return parseRecord(buffer.toString('utf8', 0, length));
}

function openForLock(lockPath) {
  // libuv adds O_CLOEXEC to every open().
  return fs.openSync(lockPath, O_RDWR | O_CREAT, 0o644);
}

const now = () => process.hrtime.bigint();

/**
 * A contender's operations. `lockPath` is `<workspace>/.ralph/loop.lock`.
 * Sync operations return their result; async ones (`async: true`) a promise.
 * `hold` takes the lock and keeps it, `release` lets it go and returns the
 * CLOCK_MONOTONIC time just before, `wait` resolves with the time the lock
 * was obtained and the record written (acquire() writes it before resolving); `abort` rejects a pending wait (absent where the API has no
 * way to cancel one: `abortMissing` says why).
 */
const contenders = {
  'loop-lock': () => {
    const { LoopLock, AlreadyLockedError } = require('..');
    const workspace = (lockPath) => path.dirname(path.dirname(lockPath));
    let guard = null;
    const ops = {
      note: 'LoopLock.tryAcquire/release, isLocked, status',
      uncontended: (lockPath) => LoopLock.tryAcquire(workspace(lockPath), PROMPT).release(),
      contended: (lockPath) => {
        try {
          LoopLock.tryAcquire(workspace(lockPath), PROMPT).release();
        } catch (error) {
          if (error instanceof AlreadyLockedError) return error.holder;
          throw error;
        }
        throw new Error('expected the lock to be held');
      },
      isLocked: (lockPath) => LoopLock.isLocked(workspace(lockPath)),
      status: (lockPath) => LoopLock.status(workspace(lockPath)).holder,
      hold: (lockPath) => {
        guard = LoopLock.acquireBlocking(workspace(lockPath), PROMPT);
      },
      release: () => {
        const start = now();
        guard.release();
        guard = null;
        return start;
      },
    };
    if (typeof LoopLock.acquire !== 'function') {
      ops.waitMissing = 'acquire() not available';
      ops.abortMissing = 'acquire() not available';
      return ops;
    }
    ops.waitNote = 'await LoopLock.acquire()';
    ops.wait = async (lockPath) => {
      guard = await LoopLock.acquire(workspace(lockPath), PROMPT);
      return now();
    };
    ops.abort = (lockPath, signal) => LoopLock.acquire(workspace(lockPath), PROMPT, { signal });
    return ops;
  },

  'fs-ext': () => {
    const { flock, flockSync } = require('fs-ext');
    let fd = -1;
    return {
      note: 'flockSync on an fs.openSync descriptor; EAGAIN is a thrown Error',
      uncontended: (lockPath) => {
        const fd = openForLock(lockPath);
        try {
          flockSync(fd, 'exnb');
          writeRecord(fd);
          flockSync(fd, 'un');
        } finally {
          fs.closeSync(fd);
        }
      },
      contended: (lockPath) => {
        const fd = openForLock(lockPath);
        try {
          flockSync(fd, 'exnb');
        } catch (error) {
          if (error.code !== 'EAGAIN') throw error;
          return readRecord(fd);
        } finally {
          fs.closeSync(fd);
        }
        throw new Error('expected the lock to be held');
      },
      isLocked: (lockPath) => {
        const fd = fs.openSync(lockPath, O_RDONLY);
        try {
          flockSync(fd, 'shnb');
          flockSync(fd, 'un');
          return false;
        } catch (error) {
          if (error.code !== 'EAGAIN') throw error;
          return true;
        } finally {
          fs.closeSync(fd);
        }
      },
      status: (lockPath) => {
        const fd = fs.openSync(lockPath, O_RDONLY);
        try {
          flockSync(fd, 'shnb');
          flockSync(fd, 'un');
          return null;
        } catch (error) {
          if (error.code !== 'EAGAIN') throw error;
          return readRecord(fd);
        } finally {
          fs.closeSync(fd);
        }
      },
      hold: (lockPath) => {
        fd = openForLock(lockPath);
        flockSync(fd, 'ex');
        writeRecord(fd);
      },
      release: () => {
        const start = now();
        flockSync(fd, 'un');
        fs.closeSync(fd);
        return start;
      },
      waitNote: 'flock(fd, "ex", callback): flock() on a libuv threadpool thread',
      wait: (lockPath) => {
        fd = openForLock(lockPath);
        return new Promise((resolve, reject) => {
          flock(fd, 'ex', (error) => {
            if (error) return reject(error);
            writeRecord(fd);
            resolve(now());
          });
        });
      },
      abortMissing: 'flock(fd, "ex", cb) cannot be cancelled',
    };
  },

  'fs-native-extensions': () => {
    const { tryLock, unlock, waitForLock, waitForLockSync } = require('fs-native-extensions');
    let fd = -1;
    return {
      note: 'tryLock/unlock: fcntl(F_OFD_SETLK) on Linux, not flock(); does not exclude flock() holders',
      uncontended: (lockPath) => {
        const fd = openForLock(lockPath);
        try {
          if (!tryLock(fd)) throw new Error('expected the lock to be free');
          writeRecord(fd);
          unlock(fd);
        } finally {
          fs.closeSync(fd);
        }
      },
      contended: (lockPath) => {
        const fd = openForLock(lockPath);
        try {
          if (tryLock(fd)) throw new Error('expected the lock to be held');
          return readRecord(fd);
        } finally {
          fs.closeSync(fd);
        }
      },
      isLocked: (lockPath) => {
        const fd = fs.openSync(lockPath, O_RDONLY);
        try {
          if (!tryLock(fd, { shared: true })) return true;
          unlock(fd);
          return false;
        } finally {
          fs.closeSync(fd);
        }
      },
      status: (lockPath) => {
        const fd = fs.openSync(lockPath, O_RDONLY);
        try {
          if (!tryLock(fd, { shared: true })) return readRecord(fd);
          unlock(fd);
          return null;
        } finally {
          fs.closeSync(fd);
        }
      },
      hold: (lockPath) => {
        fd = openForLock(lockPath);
        waitForLockSync(fd);
        writeRecord(fd);
      },
      release: () => {
        const start = now();
        unlock(fd);
        fs.closeSync(fd);
        return start;
      },
      waitNote: 'await waitForLock(fd): fcntl(F_OFD_SETLKW) on a libuv threadpool thread',
      wait: async (lockPath) => {
        fd = openForLock(lockPath);
        await waitForLock(fd);
        writeRecord(fd);
        return now();
      },
      abortMissing: 'waitForLock(fd) cannot be cancelled',
    };
  },

  'os-lock': () => {
    const { lock, unlock } = require('os-lock');
    let fd = -1;
    // POSIX record locks belong to the process: a lock held in this process
    // never conflicts with another of its descriptors, which is why every
    // holder here is another process.
    return {
      async: true,
      note: 'lock/unlock: fcntl(F_SETLK) process-owned record locks, promise API only (threadpool round trip per call)',
      uncontended: async (lockPath) => {
        const fd = openForLock(lockPath);
        try {
          await lock(fd, { exclusive: true, immediate: true });
          writeRecord(fd);
          await unlock(fd);
        } finally {
          fs.closeSync(fd);
        }
      },
      contended: async (lockPath) => {
        const fd = openForLock(lockPath);
        try {
          await lock(fd, { exclusive: true, immediate: true });
        } catch (error) {
          if (!['EACCES', 'EAGAIN', 'EBUSY'].includes(error.code)) throw error;
          return readRecord(fd);
        } finally {
          fs.closeSync(fd);
        }
        throw new Error('expected the lock to be held');
      },
      isLocked: async (lockPath) => {
        const fd = fs.openSync(lockPath, O_RDONLY);
        try {
          await lock(fd, { exclusive: false, immediate: true });
          await unlock(fd);
          return false;
        } catch (error) {
          if (!['EACCES', 'EAGAIN', 'EBUSY'].includes(error.code)) throw error;
          return true;
        } finally {
          fs.closeSync(fd);
        }
      },
      status: async (lockPath) => {
        const fd = fs.openSync(lockPath, O_RDONLY);
        try {
          await lock(fd, { exclusive: false, immediate: true });
          await unlock(fd);
          return null;
        } catch (error) {
          if (!['EACCES', 'EAGAIN', 'EBUSY'].includes(error.code)) throw error;
          return readRecord(fd);
        } finally {
          fs.closeSync(fd);
        }
      },
      hold: async (lockPath) => {
        fd = openForLock(lockPath);
        await lock(fd, { exclusive: true });
        writeRecord(fd);
      },
      release: async () => {
        const start = now();
        await unlock(fd);
        fs.closeSync(fd);
        return start;
      },
      waitNote: 'await lock(fd, { exclusive: true }): fcntl(F_SETLKW) on a libuv threadpool thread',
      wait: async (lockPath) => {
        fd = openForLock(lockPath);
        await lock(fd, { exclusive: true });
        writeRecord(fd);
        return now();
      },
      abortMissing: 'lock(fd) cannot be cancelled',
    };
  },

  'proper-lockfile': () => {
    const lockfile = require('proper-lockfile');
    // The lock is a directory beside the file (mkdir is the atomic step), so
    // the metadata lives in the file itself. It is written like the others
    // do (pwrite, ftruncate): fs.writeFileSync truncates first, and on ext4
    // close() then flushes the file, which would time the disk, not the lock.
    const options = { realpath: false };
    const writeFile = (lockPath) => {
      const fd = openForLock(lockPath);
      try {
        writeRecord(fd);
      } finally {
        fs.closeSync(fd);
      }
    };
    // Its wait is a retry loop: one mkdir every 10 ms.
    const waitOptions = { realpath: false, retries: { forever: true, factor: 1, minTimeout: 10, maxTimeout: 10 } };
    let releaseLock = null;
    const lockedError = (error) => {
      if (error.code !== 'ELOCKED') throw error;
    };
    return {
      note: 'lockSync/unlockSync/checkSync: mkdir/rmdir of <file>.lock plus utimes and stat; metadata written with pwrite+ftruncate, read with readFileSync',
      uncontended: (lockPath) => {
        const release = lockfile.lockSync(lockPath, options);
        writeFile(lockPath);
        release();
      },
      contended: (lockPath) => {
        try {
          lockfile.lockSync(lockPath, options)();
        } catch (error) {
          lockedError(error);
          return parseRecord(fs.readFileSync(lockPath, 'utf8'));
        }
        throw new Error('expected the lock to be held');
      },
      isLocked: (lockPath) => lockfile.checkSync(lockPath, options),
      status: (lockPath) => (lockfile.checkSync(lockPath, options) ? parseRecord(fs.readFileSync(lockPath, 'utf8')) : null),
      hold: (lockPath) => {
        releaseLock = lockfile.lockSync(lockPath, options);
        writeFile(lockPath);
      },
      release: () => {
        const start = now();
        releaseLock();
        releaseLock = null;
        return start;
      },
      waitNote: 'await lock(file, { retries: { forever, minTimeout: 10, maxTimeout: 10 } }): polls with mkdir every 10 ms',
      wait: async (lockPath) => {
        releaseLock = await lockfile.lock(lockPath, waitOptions);
        writeFile(lockPath);
        return now();
      },
      abortMissing: 'lock() has no AbortSignal and no way to stop its retries',
    };
  },
};

module.exports = { contenders, PROMPT, LOCK_FILE };
