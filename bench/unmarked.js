'use strict';

// Row 4b: a holder that writes no mark, as ralph's Rust loop holds: the Rust
// peer of test/rust-peer (flock(1) plus a record naming its pid where cargo
// has not built the peer), beside a loop-lock holder. Calls are made one at
// a time, 25 ms apart, as a request handler makes them: a check that leans
// on a kernel-wide lock can look cheap in a tight loop (each call finds the
// lock warm from the one before) and cost milliseconds on its own.
//
// Run as a child (`node bench/unmarked.js holder` or `... caller`) it is one
// of those processes, speaking the line protocol of bench/proc.js:
//   holder: hold <workspace> -> held;  release -> released
//   caller: lone <workspace> <pid> <workspace> <pid> <count> <gapMs>
//           -> lone <JSON: ns per call, by operation and holder>

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Proc, payload } = require('./proc');
const { inRounds, summarize } = require('./stats');

const now = () => process.hrtime.bigint();
const LOCK_FILE = path.join('.ralph', 'loop.lock');
// Where test/rust-peer-tool.js has cargo build the peer.
const RUST_PEER = path.join(os.tmpdir(), 'loop-lock-rust-peer-target', 'release', 'rust-peer');

/** The operations timed, each against both holders. */
const OPERATIONS = ['status', 'tryAcquire'];

function child(role) {
  const readline = require('node:readline');
  const { LoopLock, AlreadyLockedError } = require('..');
  const send = (line) => process.stdout.write(`${line}\n`);
  const calls = {
    status: (workspace) => LoopLock.status(workspace).holder,
    tryAcquire: (workspace) => {
      try {
        LoopLock.tryAcquire(workspace, 'bench').release();
      } catch (error) {
        if (error instanceof AlreadyLockedError) return error.holder;
        throw error;
      }
      throw new Error(`${workspace}: expected the lock to be held`);
    },
  };
  // Each call in turn, against each holder in turn, `gapMs` after the one
  // before; every answer must name the holder, or the time says nothing.
  async function lone(holders, count, gapMs) {
    const samples = Object.fromEntries(OPERATIONS.map((op) => [op, holders.map(() => [])]));
    for (let i = 0; i < count; i++) {
      for (const op of OPERATIONS) {
        for (const [index, { workspace, pid }] of holders.entries()) {
          await sleep(gapMs);
          const start = now();
          const holder = calls[op](workspace);
          samples[op][index].push(Number(now() - start));
          if (holder?.pid !== pid) throw new Error(`${op}(${workspace}) named ${JSON.stringify(holder)}, not ${pid}`);
        }
      }
    }
    return samples;
  }
  let guard = null;
  send(`ready ${JSON.stringify({ pid: process.pid })}`);
  const input = readline.createInterface({ input: process.stdin });
  input.on('close', () => process.exit(0));
  input.on('line', async (line) => {
    const [command, ...args] = line.split(' ');
    try {
      if (role === 'holder' && command === 'hold') {
        guard = LoopLock.tryAcquire(args[0], 'bench holder');
        send('held');
      } else if (role === 'holder' && command === 'release') {
        guard.release();
        send('released');
      } else if (role === 'caller' && command === 'lone') {
        const [markedWorkspace, markedPid, unmarkedWorkspace, unmarkedPid, count, gapMs] = args;
        const holders = [
          { workspace: markedWorkspace, pid: Number(markedPid) },
          { workspace: unmarkedWorkspace, pid: Number(unmarkedPid) },
        ];
        send(`lone ${JSON.stringify(await lone(holders, Number(count), Number(gapMs)))}`);
      } else {
        throw new Error(`unknown command ${command}`);
      }
    } catch (error) {
      send(`error ${String(error.stack ?? error).replace(/\n/g, ' | ')}`);
    }
  });
}

/** A workspace whose lock file exists, as after a first run. */
function workspaceIn(root, name) {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, '.ralph'), { recursive: true });
  fs.writeFileSync(path.join(dir, LOCK_FILE), '');
  return dir;
}

/**
 * The holder that writes no mark: the Rust peer, which writes its record as
 * the reference does; else flock(1), with a record naming it written here.
 * Resolves with `{ name, pid, close }` once it holds.
 */
async function holdUnmarked(workspace) {
  const lockPath = path.join(workspace, LOCK_FILE);
  if (fs.existsSync(RUST_PEER)) {
    const peer = new Proc('Rust peer holder', RUST_PEER, []);
    const reply = JSON.parse(await peer.request(JSON.stringify(['hold', lockPath, 'bench'])));
    if (reply.event !== 'held') throw new Error(`Rust peer: ${JSON.stringify(reply)}`);
    return { name: 'Rust peer', pid: peer.child.pid, close: () => peer.close() };
  }
  const flock = new Proc('flock(1) holder', 'flock', ['-n', lockPath, '-c', 'echo locked; read line']);
  payload(await flock.next(), 'locked');
  const record = { pid: flock.child.pid, started: new Date().toISOString(), prompt: 'bench' };
  fs.writeFileSync(lockPath, JSON.stringify(record, null, 2));
  return { name: 'flock(1) + record', pid: flock.child.pid, close: () => flock.close() };
}

/**
 * The row's figures, by entry name: each operation against the loop-lock
 * holder ('<op>, loop-lock holder') and against the one that writes no mark
 * ('<op>, <name> holder'), `config.handoffs` lone calls each.
 */
async function unmarkedRow(root, config, log) {
  const marked = workspaceIn(root, 'marked');
  const unmarked = workspaceIn(root, 'unmarked');
  const holder = new Proc('loop-lock holder', process.execPath, [__filename, 'holder']);
  const caller = new Proc('lone caller', process.execPath, [__filename, 'caller']);
  const results = new Map();
  let foreign = null;
  try {
    const [{ info: holderInfo }] = await Promise.all([holder.ready(), caller.ready()]);
    payload(await holder.request(`hold ${marked}`), 'held');
    foreign = await holdUnmarked(unmarked);
    const lone = async (count) => {
      const reply = await caller.request(`lone ${marked} ${holderInfo.pid} ${unmarked} ${foreign.pid} ${count} 25`);
      return JSON.parse(payload(reply, 'lone'));
    };
    log(`unmarked holder (${foreign.name}): ${config.handoffs} lone calls of each kind, 25 ms apart`);
    await lone(Math.min(5, config.handoffs));
    const samples = await lone(config.handoffs);
    for (const op of OPERATIONS) {
      results.set(`${op}, loop-lock holder`, summarize(inRounds(samples[op][0], 20)));
      results.set(`${op}, ${foreign.name} holder`, summarize(inRounds(samples[op][1], 20)));
    }
    results.set('unmarked holder', foreign.name);
  } finally {
    await Promise.all([holder.close(), caller.close(), foreign?.close()]);
  }
  return results;
}

if (require.main === module) child(process.argv[2]);

module.exports = { OPERATIONS, unmarkedRow };
