'use strict';

// loop-lock's benchmark: every figure from one run on one machine, each
// operation timed one call at a time, against the same syscalls in C (the
// floor) and against the peers. Contenders run in their own processes, in
// rounds that rotate their order, so drifting background load spreads over
// all of them instead of landing on one.
//
//   npm run bench                  the table (markdown)
//   npm run -s bench -- --json     the same figures as JSON
//
// Options (flag or environment variable):
//   --cycles=N      LOOP_LOCK_BENCH_CYCLES   memory row cycles (default 1000000, 0 skips it)
//   --rounds=N      LOOP_LOCK_BENCH_ROUNDS   rounds of timed batches (default 30)
//   --batch-ms=N    LOOP_LOCK_BENCH_BATCH_MS length of one batch (default 25)
//   --handoffs=N    LOOP_LOCK_BENCH_HANDOFFS handoffs per contender, changes seen by watch(), and lone calls of row 4b
//                   (default 200; 0 also skips rows 4b and 5d)
//   --aborts=N      LOOP_LOCK_BENCH_ABORTS   aborted acquire() calls (default 100)
//   --park-ms=N     LOOP_LOCK_BENCH_PARK_MS  least time a waiter waits before the release (default 10)
//   --peer-memory-s=N LOOP_LOCK_BENCH_PEER_MEMORY_S  time budget of a peer's memory row (default 30)
//   --contenders=a,b,...                     a subset, by name (C is always run)

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { setTimeout: sleep } = require('node:timers/promises');
const { Proc, payload } = require('./proc');
const { inRounds, summarize } = require('./stats');
const { LOCK_FILE } = require('./contenders');
const { CLAIM_FLOOR, TIMED_ROWS, buildResult, printTable } = require('./report');
const { readerRow, watchRow } = require('./watch');
const { fileLockRow, printFileLockRow } = require('./file-lock');
const { unmarkedRow } = require('./unmarked');

const ROOT = path.join(__dirname, '..');
const BUILD = path.join(__dirname, '.build');
const FLOOR = path.join(BUILD, 'floor');

const NODE_CONTENDERS = ['loop-lock', 'fs-ext', 'fs-native-extensions', 'os-lock', 'proper-lockfile'];

function option(flag, variable, fallback) {
  const prefix = `--${flag}=`;
  const arg = process.argv.find((a) => a.startsWith(prefix));
  const raw = arg === undefined ? process.env[variable] : arg.slice(prefix.length);
  if (raw === undefined || raw === '') return fallback;
  if (typeof fallback === 'number') {
    const value = Number(raw.replace(/_/g, ''));
    if (!Number.isInteger(value) || value < 0) throw new Error(`--${flag} must be a whole number, got "${raw}"`);
    return value;
  }
  return raw;
}

const config = {
  cycles: option('cycles', 'LOOP_LOCK_BENCH_CYCLES', 1_000_000),
  rounds: Math.max(1, option('rounds', 'LOOP_LOCK_BENCH_ROUNDS', 30)),
  batchMs: Math.max(1, option('batch-ms', 'LOOP_LOCK_BENCH_BATCH_MS', 25)),
  handoffs: option('handoffs', 'LOOP_LOCK_BENCH_HANDOFFS', 200),
  aborts: option('aborts', 'LOOP_LOCK_BENCH_ABORTS', 100),
  parkMs: option('park-ms', 'LOOP_LOCK_BENCH_PARK_MS', 10),
  peerMemorySeconds: option('peer-memory-s', 'LOOP_LOCK_BENCH_PEER_MEMORY_S', 30),
};
const json = process.argv.includes('--json');
const only = option('contenders', 'LOOP_LOCK_BENCH_CONTENDERS', '');
const nodeContenders = only === '' ? NODE_CONTENDERS : NODE_CONTENDERS.filter((n) => only.split(',').includes(n));

const log = (message) => process.stderr.write(`${message}\n`);

/** Compiles what the bench runs: dist/ when lib/ is newer, and the C floor. */
function prepare() {
  const newest = (dir, ext) =>
    fs.existsSync(dir)
      ? Math.max(0, ...fs.readdirSync(dir).filter((f) => f.endsWith(ext)).map((f) => fs.statSync(path.join(dir, f)).mtimeMs))
      : 0;
  const dist = path.join(ROOT, 'dist', 'index.js');
  if (!fs.existsSync(dist) || newest(path.join(ROOT, 'lib'), '.ts') > fs.statSync(dist).mtimeMs) {
    log('compiling lib/ to dist/');
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json')], {
      stdio: ['ignore', 2, 2],
    });
  }
  const source = path.join(__dirname, 'floor.c');
  if (!fs.existsSync(FLOOR) || fs.statSync(source).mtimeMs > fs.statSync(FLOOR).mtimeMs) {
    fs.mkdirSync(BUILD, { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', FLOOR, source], { stdio: ['ignore', 2, 2] });
  }
}

function machine(dir) {
  const tryRun = (file, args) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return 'unknown';
    }
  };
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  return {
    nproc: Number(tryRun('nproc', [])) || os.availableParallelism(),
    kernel: os.release(),
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    fileSystem: tryRun('findmnt', ['-n', '-o', 'FSTYPE', '--target', dir]),
    tmpdir: os.tmpdir(),
  };
}

const nodeRunner = (name, label, extra) =>
  new Proc(label, process.execPath, [...extra, path.join(__dirname, 'runner.js'), name]);

/** A workspace with its lock file in place, holding a record, as after a first run. */
function workspace(root, ...parts) {
  const dir = path.join(root, ...parts);
  const lockPath = path.join(dir, LOCK_FILE);
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  fs.writeFileSync(lockPath, JSON.stringify({ pid: 1, started: new Date().toISOString(), prompt: 'setup' }, null, 2));
  return lockPath;
}

/**
 * Timed rows 1-4. Each contender is one process; its holder (for the "held"
 * workspace) is another process of the same kind, so the lock it probes is
 * held by the mechanism it understands.
 */
async function timedRows(root, contenders) {
  const results = new Map(TIMED_ROWS.map((row) => [row.id, new Map()]));
  const active = [];
  for (const contender of contenders) {
    if (!contender.ok) continue;
    const holder = contender.spawn(`${contender.name} holder`);
    const ready = await holder.ready();
    if (!ready.ok) throw new Error(`${contender.name} holder: ${ready.reason}`);
    const paths = { free: workspace(root, contender.name, 'free'), held: workspace(root, contender.name, 'held') };
    payload(await holder.request(`hold ${paths.held}`), 'held');
    contender.holder = holder;
    contender.heldPath = paths.held;
    for (const row of TIMED_ROWS) {
      active.push({ contender, row: row.id, command: row.id, lockPath: paths[row.workspace], rounds: [] });
    }
    if (contender.kind === 'floor') {
      const lockPath = workspace(root, 'c-reference', 'free');
      active.push({ contender, row: 'uncontended', command: 'reference', lockPath, rounds: [], label: 'C reference order' });
    }
  }
  const batch = async (job, count) =>
    payload(await job.contender.proc.request(`${job.command} ${job.lockPath} ${count}`), 'samples')
      .split(' ')
      .map(Number);
  // Warm-up: JIT, page cache and dentries; also sizes each batch to
  // about batchMs, so the slow contenders don't stretch a round.
  for (const job of active) {
    const probe = (await batch(job, 50)).sort((a, b) => a - b);
    const medianNs = probe[25];
    job.count = Math.max(10, Math.min(20_000, Math.round((config.batchMs * 1e6) / medianNs)));
    await batch(job, Math.min(job.count * 4, 20_000));
  }
  for (let round = 0; round < config.rounds; round++) {
    log(`timed rows: round ${round + 1}/${config.rounds}`);
    for (const row of TIMED_ROWS) {
      const jobs = active.filter((job) => job.row === row.id);
      const shift = round % jobs.length;
      for (const job of [...jobs.slice(shift), ...jobs.slice(0, shift)]) {
        job.rounds.push(await batch(job, job.count));
      }
    }
  }
  for (const job of active) {
    results.get(job.row).set(job.label ?? job.contender.name, summarize(job.rounds));
  }
  return results;
}

/**
 * Row 5: one process holds, another waits; the holder takes a
 * CLOCK_MONOTONIC timestamp just before releasing, the waiter one as soon
 * as it has the lock. The waiter waits a random 1-2 park times first, so it
 * is really parked (and a polling waiter's phase is not always the same).
 */
async function handoffRow(root, contenders) {
  const pairs = [];
  const addPair = async (contender, name, waitCommand) => {
    const holder = contender.spawn(`${name} handoff holder`);
    const waiter = contender.spawn(`${name} handoff waiter`);
    for (const proc of [holder, waiter]) {
      const ready = await proc.ready();
      if (!ready.ok) throw new Error(`${proc.label}: ${ready.reason}`);
    }
    const dir = name.replace(/[^A-Za-z0-9-]+/g, '-');
    pairs.push({ name, holder, waiter, waitCommand, lockPath: workspace(root, dir, 'handoff'), samples: [] });
  };
  for (const contender of contenders) {
    if (!contender.ok || contender.info.waitMissing) continue;
    await addPair(contender, contender.name, 'wait');
    // The floor again, doing after its wake-up what acquire() must before
    // it resolves: check the path and write the record.
    if (contender.kind === 'floor') await addPair(contender, CLAIM_FLOOR, 'waitClaim');
  }
  const handoff = async (pair) => {
    payload(await pair.holder.request(`hold ${pair.lockPath}`), 'held');
    // "waiting" means the wait call is made; the sleep lets it park.
    payload(await pair.waiter.request(`${pair.waitCommand} ${pair.lockPath}`), 'waiting');
    await sleep(config.parkMs * (1 + Math.random()));
    const released = BigInt(payload(await pair.holder.request('release'), 'released'));
    const gotIt = BigInt(payload(await pair.waiter.next(), 'acquired'));
    payload(await pair.waiter.request('release'), 'released');
    return Number(gotIt - released);
  };
  const warmup = Math.min(5, config.handoffs);
  for (let i = 0; i < config.handoffs + warmup; i++) {
    if (i % 20 === 0) log(`handoff: ${i}/${config.handoffs + warmup}`);
    const shift = i % Math.max(1, pairs.length);
    for (const pair of [...pairs.slice(shift), ...pairs.slice(0, shift)]) {
      const ns = await handoff(pair);
      if (i >= warmup) pair.samples.push(ns);
    }
  }
  const results = new Map();
  for (const pair of pairs) {
    if (pair.samples.length > 0) results.set(pair.name, summarize(inRounds(pair.samples, 20)));
    await Promise.all([pair.holder.close(), pair.waiter.close()]);
  }
  return results;
}

/** Row 5b: how long an aborted acquire() takes to reject, with the lock held elsewhere. */
async function abortRow(contenders) {
  const results = new Map();
  for (const contender of contenders) {
    if (contender.kind === 'floor' || !contender.ok || contender.info.abortMissing || config.aborts === 0) continue;
    log(`abort: ${contender.name}`);
    const reply = await contender.proc.request(`abort ${contender.heldPath} ${config.aborts} ${config.parkMs}`);
    const outcome = JSON.parse(payload(reply, 'aborts'));
    results.set(contender.name, {
      ...summarize(inRounds(outcome.samples, 20)),
      wrongReason: outcome.wrongReason,
      fdsBefore: outcome.fdsBefore,
      fdsAfter: outcome.fdsAfter,
    });
    results.set(`${contender.name} baseline`, summarize(inRounds(outcome.baseline, 20)));
  }
  return results;
}

/**
 * RSS growth from the checkpoints: the median of the last three minus the
 * median of the first three, so that one reading caught mid-way through a
 * malloc or GC cycle (a few MB either way) cannot pass or fail the run alone.
 */
function rssGrowth(checkpoints) {
  const median3 = (values) => [...values].sort((a, b) => a - b)[1];
  return {
    rssBeforeKiB: checkpoints[0],
    rssAfterKiB: checkpoints[checkpoints.length - 1],
    rssGrowthKiB: median3(checkpoints.slice(-3)) - median3(checkpoints.slice(0, 3)),
    rssRangeKiB: Math.max(...checkpoints) - Math.min(...checkpoints),
  };
}

/**
 * Row 6: a fresh process per contender, RSS and descriptors around N row-1
 * cycles. loop-lock and C run all N; a peer runs as many as fit in
 * peerMemorySeconds at its row-1 median (proper-lockfile would take over ten
 * minutes for a million), and the table says how many that was.
 */
async function memoryRow(root, contenders, uncontended) {
  const results = new Map();
  if (config.cycles === 0) return results;
  for (const contender of contenders) {
    if (!contender.ok) continue;
    let cycles = config.cycles;
    const medianUs = uncontended.get(contender.name)?.medianUs;
    if (contender.kind === 'peer' && medianUs !== undefined) {
      cycles = Math.min(cycles, Math.max(1000, Math.floor((config.peerMemorySeconds * 1e6) / medianUs)));
    }
    log(`memory: ${contender.name}, ${cycles} cycles`);
    // A 1 MB young generation for every Node contender: V8 otherwise grows
    // it to 32 MB at a pace set by how much garbage each cycle makes, and
    // its pages become resident as they are first touched, which reads as
    // megabytes of RSS growth hundreds of thousands of cycles in, for a
    // heap whose live size never changes. Retained memory is what shows.
    const proc = contender.spawn(`${contender.name} memory`, ['--expose-gc', '--max-semi-space-size=1']);
    const ready = await proc.ready();
    if (!ready.ok) throw new Error(`${proc.label}: ${ready.reason}`);
    const lockPath = workspace(root, contender.name, 'memory');
    const outcome = JSON.parse(payload(await proc.request(`memory ${lockPath} ${cycles}`), 'memory'));
    results.set(contender.name, { cycles, ...outcome, ...rssGrowth(outcome.rssCheckpointsKiB) });
    await proc.close();
  }
  return results;
}

async function main() {
  prepare();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-lock-bench-'));
  const started = new Date();
  const loadBefore = os.loadavg();
  const contenders = [
    { name: 'C', kind: 'floor', spawn: (label) => new Proc(label, FLOOR, []) },
    ...nodeContenders.map((name) => ({
      name,
      kind: name === 'loop-lock' ? 'subject' : 'peer',
      spawn: (label, extra = []) => nodeRunner(name, label, extra),
    })),
  ];
  for (const contender of contenders) {
    contender.proc = contender.spawn(contender.name);
    const ready = await contender.proc.ready();
    Object.assign(contender, ready);
    if (!ready.ok) log(`${contender.name}: unavailable (${ready.reason})`);
  }
  try {
    const timed = await timedRows(root, contenders);
    const handoff = await handoffRow(root, contenders);
    const aborts = await abortRow(contenders);
    // loop-lock's own row: no peer has a change feed.
    const watch =
      nodeContenders.includes('loop-lock') && config.handoffs > 0
        ? await watchRow(path.join(root, 'watch'), config, log)
        : new Map();
    const unmarked =
      nodeContenders.includes('loop-lock') && config.handoffs > 0
        ? await unmarkedRow(path.join(root, 'unmarked'), config, log)
        : new Map();
    const readers =
      nodeContenders.includes('loop-lock') && config.handoffs > 0 ? await readerRow(path.join(root, 'readers'), log) : new Map();
    const memory = await memoryRow(root, contenders, timed.get('uncontended'));
    const fileLock = await fileLockRow(root, config, log);
    const result = buildResult({
      started,
      machine: { ...machine(root), loadavg: { before: loadBefore, after: os.loadavg() } },
      config,
      contenders,
      timed,
      handoff,
      aborts,
      watch,
      unmarked,
      readers,
      memory,
    });
    if (json) {
      process.stdout.write(`${JSON.stringify({ ...result, fileLock }, null, 2)}\n`);
    } else {
      printTable(result);
      printFileLockRow(fileLock);
    }
  } finally {
    for (const contender of contenders) {
      await Promise.all([contender.proc.close(), contender.holder?.close()]);
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  log(error.stack ?? String(error));
  process.exitCode = 1;
});
