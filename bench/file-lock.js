'use strict';

// The file-lock row: a shared try and its release, on a free sidecar, by
// FileLock, by fs-ext's flock and by the same syscalls in C (open, flock
// (LOCK_SH|LOCK_NB), close). Each contender is its own process, timed one
// call at a time in rounds whose order rotates, as the other rows are.
//
//   node bench/file-lock.js          this row alone (markdown)
//   node bench/file-lock.js --child <name>   a contender (used by the row)

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { execFileSync } = require('node:child_process');
const { Proc, payload } = require('./proc');
const { summarize } = require('./stats');

const FLOOR_SOURCE = path.join(__dirname, 'file-lock-floor.c');
const FLOOR = path.join(__dirname, '.build', 'file-lock-floor');

const TITLE = '7. FileLock: tryShared() + release() on a free sidecar';
const FLOOR_WORK = 'open(O_RDWR|O_CREAT|O_CLOEXEC), flock(LOCK_SH|LOCK_NB), close';

/** What each Node contender does per call. */
const CONTENDERS = {
  // The FileLock is made once per path, as a reader keeps it: the row times
  // the lock, not the naming of its sidecar (about 1 µs, once).
  'loop-lock': () => {
    const { FileLock } = require('..');
    const locks = new Map();
    return (file) => {
      let lock = locks.get(file);
      if (lock === undefined) locks.set(file, (lock = new FileLock(file)));
      const guard = lock.tryShared();
      if (guard === null) throw new Error('expected the shared lock to be free');
      guard.release();
    };
  },
  'fs-ext': () => {
    const { flockSync } = require('fs-ext');
    return (lockPath) => {
      const fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT);
      try {
        flockSync(fd, 'shnb');
      } finally {
        fs.closeSync(fd);
      }
    };
  },
};

/** A contender process: answers "shared <lockPath> <count>" with its samples. */
function child(name) {
  let op;
  try {
    op = CONTENDERS[name]();
  } catch (error) {
    process.stdout.write(`unavailable ${String(error.message).split('\n')[0]}\n`);
    return;
  }
  process.stdout.write('ready {}\n');
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [, lockPath, count] = line.split(' ');
    // The sidecar of `lockPath` minus ".lock" is lockPath itself: every contender locks one file.
    const target = name === 'loop-lock' ? lockPath.replace(/\.lock$/, '') : lockPath;
    op(target);
    const samples = new Array(Number(count));
    for (let i = 0; i < samples.length; i++) {
      const start = process.hrtime.bigint();
      op(target);
      samples[i] = Number(process.hrtime.bigint() - start);
    }
    process.stdout.write(`samples ${samples.join(' ')}\n`);
  });
}

function buildFloor() {
  if (fs.existsSync(FLOOR) && fs.statSync(FLOOR_SOURCE).mtimeMs <= fs.statSync(FLOOR).mtimeMs) return;
  fs.mkdirSync(path.dirname(FLOOR), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', FLOOR, FLOOR_SOURCE], { stdio: ['ignore', 2, 2] });
}

/**
 * The row's figures: `{ title, floorWork, results: [{ name, available,
 * medianUs, p99Us, ratio, samples, spreadPct } | { name, available: false, reason }] }`.
 */
async function fileLockRow(root, { rounds, batchMs }, log) {
  buildFloor();
  const lockPath = path.join(root, 'file-lock', 'tasks.jsonl.lock');
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  const procs = [
    { name: 'C', proc: new Proc('file-lock C', FLOOR, []) },
    ...Object.keys(CONTENDERS).map((name) => ({
      name,
      proc: new Proc(`file-lock ${name}`, process.execPath, [__filename, '--child', name]),
    })),
  ];
  const batch = async (job, count) =>
    payload(await job.proc.request(`shared ${lockPath} ${count}`), 'samples').split(' ').map(Number);
  const active = [];
  const results = [];
  for (const job of procs) {
    const ready = await job.proc.ready();
    if (!ready.ok) {
      results.push({ name: job.name, available: false, reason: ready.reason });
      continue;
    }
    // Warm-up, which also sizes each batch to about batchMs.
    const probe = (await batch(job, 50)).sort((a, b) => a - b);
    job.count = Math.max(10, Math.min(20_000, Math.round((batchMs * 1e6) / probe[25])));
    await batch(job, Math.min(job.count * 4, 20_000));
    job.rounds = [];
    active.push(job);
  }
  for (let round = 0; round < rounds; round++) {
    if (round % 10 === 0) log(`file lock: round ${round + 1}/${rounds}`);
    const shift = round % active.length;
    for (const job of [...active.slice(shift), ...active.slice(0, shift)]) job.rounds.push(await batch(job, job.count));
  }
  await Promise.all(procs.map((job) => job.proc.close()));
  const floor = summarize(active.find((job) => job.name === 'C').rounds);
  for (const job of active) {
    const figures = job.name === 'C' ? floor : summarize(job.rounds);
    results.push({ name: job.name, available: true, ...figures, ratio: figures.medianUs / floor.medianUs });
  }
  return { title: TITLE, floorWork: FLOOR_WORK, results };
}

/** The row as a markdown table of its own. */
function printFileLockRow(row) {
  const fixed = (us) => (us < 10 ? us.toFixed(2) : us.toFixed(1));
  const out = ['', `C floor: ${row.floorWork}.`, '', '| operation | contender | median µs | p99 µs | × C floor | samples | spread |'];
  out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  row.results.forEach((e, i) => {
    const op = i === 0 ? row.title : '';
    if (!e.available) return out.push(`| ${op} | ${e.name} | n/a (${e.reason}) | | | | |`);
    out.push(`| ${op} | ${e.name} | ${fixed(e.medianUs)} | ${fixed(e.p99Us)} | ${e.ratio.toFixed(2)}x | ${e.samples} | ${e.spreadPct}% |`);
  });
  process.stdout.write(`${out.join('\n')}\n`);
}

module.exports = { fileLockRow, printFileLockRow };

if (require.main === module) {
  const at = process.argv.indexOf('--child');
  if (at >= 0) {
    child(process.argv[at + 1]);
  } else {
    const os = require('node:os');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-lock-bench-file-lock-'));
    const rounds = Number(process.env.LOOP_LOCK_BENCH_ROUNDS) || 30;
    const batchMs = Number(process.env.LOOP_LOCK_BENCH_BATCH_MS) || 25;
    fileLockRow(root, { rounds, batchMs }, (m) => process.stderr.write(`${m}\n`))
      .then(printFileLockRow)
      .finally(() => fs.rmSync(root, { recursive: true, force: true }));
  }
}
