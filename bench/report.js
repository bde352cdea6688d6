'use strict';

const fs = require('node:fs');
const path = require('node:path');

/** Rows 1-4: timed one call at a time, by every contender. */
const TIMED_ROWS = [
  { id: 'uncontended', title: '1. uncontended tryAcquire + metadata write + release', workspace: 'free' },
  { id: 'contended', title: '2. contended tryAcquire returning the holder (holder: another process)', workspace: 'held' },
  { id: 'isLockedFree', title: '3a. isLocked, lock free', workspace: 'free' },
  { id: 'isLockedHeld', title: '3b. isLocked, held by another process', workspace: 'held' },
  { id: 'statusHeld', title: '4. status, held by another process (returns the holder)', workspace: 'held' },
];

const HANDOFF_TITLE = '5. handoff: holder in another process releases, waiter in another process gets it';
const ABORT_TITLE = '5b. abort of a pending acquire() (lock held by another process)';
const WATCH_TITLE = '5c. watch(): a change in another process seen by LoopLock.watch() (× the C handoff floor of row 5)';

const UNMARKED_TITLE =
  '4b. a holder that writes no mark (ralph\'s Rust loop): lone calls, 25 ms apart (× the same call against a loop-lock holder)';

/** What the C floor does in each row. */
const FLOOR_WORK = {
  uncontended: 'open(O_RDWR|O_CREAT|O_CLOEXEC), flock(LOCK_EX|LOCK_NB), pwrite, ftruncate, close',
  reference: 'open, flock(LOCK_EX|LOCK_NB), ftruncate(0), write, fsync, close (the Rust reference order)',
  contended: 'open(O_RDWR|O_CREAT|O_CLOEXEC), flock(LOCK_EX|LOCK_NB) fails, pread, close',
  isLockedFree: 'open(O_RDONLY|O_CLOEXEC), flock(LOCK_SH|LOCK_NB), close',
  isLockedHeld: 'open(O_RDONLY|O_CLOEXEC), flock(LOCK_SH|LOCK_NB) fails, close',
  statusHeld: 'open(O_RDONLY|O_CLOEXEC), flock(LOCK_SH|LOCK_NB) fails, pread, close',
  handoff: 'waiter blocked in flock(LOCK_EX), no record written; holder calls flock(LOCK_UN), close',
  handoffClaim:
    'waiter blocked in flock(LOCK_EX), then what acquire() does before resolving: lstat (is the path still the locked inode?), pwritev (record, NUL first byte), pwrite (first byte), fcntl(F_OFD_SETLK) (the holder mark)',
};

/** What each figure of the watch row times. */
const WATCH_WORK = {
  release: 'release() called in the holder -> the watcher\'s loop body gets { locked: false }',
  acquisition: 'tryAcquire() called in the holder -> the watcher\'s loop body gets { locked: true, holder } with that record',
  call: 'tryAcquire() in the holder, from its call to its return (part of the acquisition figure)',
};

const READERS_TITLE =
  '5d. watch() beside readers: the watching process\'s CPU per reader open/close in another process (× one lone status())';

/** What each figure of the readers row is. */
const READERS_WORK = {
  status: 'one status() against a loop-lock holder in another process, calls 25 ms apart (wall time)',
  cpu: 'CPU time (user + system) of a process watching the lock, per open, read and close of the lock file by another process, 150 ms apart (mean of 40)',
};

/** Row 5d: the watcher's CPU per reader beside a loop-lock and an unmarked holder, against a lone status(). */
function readersRow(readers, config) {
  const missing = config.handoffs === 0 ? 'skipped (--handoffs=0)' : 'not measured';
  const lone = readers.get('lone status');
  return {
    id: 'readers',
    title: READERS_TITLE,
    results: [
      entry('lone status()', 'reference', lone, lone, missing, READERS_WORK.status),
      entry('watcher, loop-lock holder', 'subject', readers.get('readers, loop-lock holder'), lone, missing, READERS_WORK.cpu),
      entry(
        'watcher, unmarked holder (flock(1) + record)',
        'subject',
        readers.get('readers, unmarked holder'),
        lone,
        missing,
        READERS_WORK.cpu,
      ),
    ],
  };
}

/** The C floor's handoff again, with the work after the wake-up that acquire() cannot skip. */
const CLAIM_FLOOR = 'C waiter + claim';

function versionOf(name) {
  try {
    const file = path.join(__dirname, '..', 'node_modules', name, 'package.json');
    return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  } catch {
    return null;
  }
}

const round2 = (x) => Math.round(x * 100) / 100;

/** One contender's figures in a row, or why it has none. */
function entry(contender, kind, figures, floor, missing, work) {
  if (figures === undefined) return { contender, kind, available: false, reason: missing };
  const ratio = floor === undefined ? null : round2(figures.medianUs / floor.medianUs);
  return {
    contender,
    kind,
    available: true,
    ...(work === undefined ? {} : { work }),
    medianUs: round2(figures.medianUs),
    p99Us: round2(figures.p99Us),
    maxUs: round2(figures.maxUs),
    ratio,
    samples: figures.samples,
    spreadPct: figures.spreadPct,
    ...(figures.wrongReason === undefined
      ? {}
      : { wrongReason: figures.wrongReason, fdsBefore: figures.fdsBefore, fdsAfter: figures.fdsAfter }),
  };
}

function unavailable(contender) {
  return contender.ok ? null : `cannot load: ${contender.reason}`;
}

/** Row 4b: each operation against a loop-lock holder, then against one that writes no mark. */
function unmarkedResults(unmarked, config) {
  const missing = config.handoffs === 0 ? 'skipped (--handoffs=0)' : 'loop-lock not run';
  const foreign = unmarked.get('unmarked holder') ?? 'unmarked';
  return ['status', 'tryAcquire'].flatMap((op) => {
    const own = unmarked.get(`${op}, loop-lock holder`);
    const work = op === 'status' ? 'status()' : 'tryAcquire() failing, returning the holder';
    return [
      entry(`${op}, loop-lock holder`, 'reference', own, own, missing, `${work}; the holder marked its record`),
      entry(`${op}, ${foreign} holder`, 'subject', unmarked.get(`${op}, ${foreign} holder`), own, missing, `${work}; no mark`),
    ];
  });
}

function buildRows({ contenders, timed, handoff, aborts, watch, unmarked, readers, config }) {
  const rows = [];
  for (const row of TIMED_ROWS) {
    const measured = timed.get(row.id);
    const floor = measured.get('C');
    const results = [];
    for (const contender of contenders) {
      const missing = unavailable(contender) ?? 'not measured';
      const work = contender.kind === 'floor' ? FLOOR_WORK[row.id] : undefined;
      results.push(entry(contender.name, contender.kind, measured.get(contender.name), floor, missing, work));
      if (contender.kind === 'floor' && row.id === 'uncontended') {
        const reference = measured.get('C reference order');
        results.push(entry('C reference order', 'reference', reference, floor, missing, FLOOR_WORK.reference));
      }
    }
    rows.push({ id: row.id, title: row.title, results });
  }
  rows.push({ id: 'unmarked', title: UNMARKED_TITLE, results: unmarkedResults(unmarked, config) });
  const floorHandoff = handoff.get('C');
  rows.push({
    id: 'handoff',
    title: HANDOFF_TITLE,
    results: contenders.flatMap((c) => {
      const own = entry(
        c.name,
        c.kind,
        handoff.get(c.name),
        floorHandoff,
        unavailable(c) ?? c.info.waitMissing ?? 'not measured',
        c.kind === 'floor' ? FLOOR_WORK.handoff : undefined,
      );
      if (c.kind !== 'floor') return [own];
      const claim = entry(CLAIM_FLOOR, 'reference', handoff.get(CLAIM_FLOOR), floorHandoff, 'not measured', FLOOR_WORK.handoffClaim);
      return [own, claim];
    }),
  });
  const abortResults = [];
  for (const c of contenders) {
    let missing = unavailable(c) ?? c.info.abortMissing ?? 'not measured';
    if (c.kind === 'floor') missing = 'no C counterpart: the target is absolute';
    else if (config.aborts === 0 && c.ok && !c.info.abortMissing) missing = 'skipped (--aborts=0)';
    abortResults.push(entry(c.name, c.kind, aborts.get(c.name), undefined, missing));
    const baseline = aborts.get(`${c.name} baseline`);
    if (baseline !== undefined) {
      abortResults.push(
        entry('AbortSignal alone', 'baseline', baseline, undefined, '', 'a promise rejected by the signal\'s abort listener, same process, interleaved'),
      );
    }
  }
  rows.push({ id: 'abort', title: ABORT_TITLE, results: abortResults });
  const watchMissing = config.handoffs === 0 ? 'skipped (--handoffs=0)' : 'loop-lock not run';
  rows.push({
    id: 'watch',
    title: WATCH_TITLE,
    results: [
      entry('C floor', 'floor', floorHandoff, floorHandoff, 'not measured', FLOOR_WORK.handoff),
      entry('release seen', 'subject', watch.get('release'), floorHandoff, watchMissing, WATCH_WORK.release),
      entry('acquisition seen', 'subject', watch.get('acquisition'), floorHandoff, watchMissing, WATCH_WORK.acquisition),
      entry('the acquire itself', 'reference', watch.get('acquire call'), floorHandoff, watchMissing, WATCH_WORK.call),
    ],
  });
  rows.push(readersRow(readers ?? new Map(), config));
  return rows;
}

function buildMemory({ contenders, memory, config }) {
  return {
    cycles: config.cycles,
    results: contenders.map((c) => {
      const figures = memory.get(c.name);
      if (figures === undefined) {
        return {
          contender: c.name,
          kind: c.kind,
          available: false,
          reason: unavailable(c) ?? (config.cycles === 0 ? 'skipped (--cycles=0)' : 'not measured'),
        };
      }
      return { contender: c.name, kind: c.kind, available: true, ...figures, seconds: round2(figures.seconds) };
    }),
  };
}

function verdict(target, limit, value, pass, unit, reason) {
  return value === null
    ? { target, limit, value: null, unit, pass: null, reason }
    : { target, limit, value: round2(value), unit, pass };
}

/**
 * A verdict on the quotient of two figures' medians, against `target`:
 * `'<= 1.5x'` (at most) or `'>= 10x'` (at least).
 */
function quotientVerdict(what, target, numerator, denominator) {
  if (!numerator?.available || !denominator?.available) return verdict(what, target, null, null, 'x', 'not measured');
  const ratio = numerator.medianUs / denominator.medianUs;
  const bound = Number(target.replace(/[^\d.]/g, ''));
  return verdict(what, target, ratio, target.startsWith('>=') ? ratio >= bound : ratio <= bound, 'x');
}

/** The targets of DESIGN.md, judged on this run's figures. */
function buildVerdicts(rows, memory) {
  const find = (rowId, contender) => rows.find((r) => r.id === rowId).results.find((e) => e.contender === contender);
  const ratioTarget = (target, rowId, limit) => {
    const e = find(rowId, 'loop-lock');
    return e?.available
      ? verdict(target, `<= ${limit}x`, e.ratio, e.ratio <= limit, 'x')
      : verdict(target, `<= ${limit}x`, null, null, 'x', e?.reason ?? 'loop-lock not run');
  };
  // DESIGN.md: a row's median below fs-ext's in the same run.
  const belowFsExt = (target, row) => {
    const ours = find(row, 'loop-lock');
    const peer = find(row, 'fs-ext');
    return ours?.available && peer?.available
      ? verdict(target, '< 1x', ours.medianUs / peer.medianUs, ours.medianUs < peer.medianUs, 'x')
      : verdict(target, '< 1x', null, null, 'x', 'loop-lock or fs-ext not run');
  };
  const verdicts = [
    ratioTarget('uncontended tryAcquire + write + release vs C floor', 'uncontended', 1.4),
    belowFsExt('uncontended vs fs-ext', 'uncontended'),
  ];
  verdicts.push(
    quotientVerdict(
      'uncontended: faster than the reference order (truncate, write, fsync)',
      '>= 10x',
      find('uncontended', 'C reference order'),
      find('uncontended', 'loop-lock'),
    ),
  );
  verdicts.push(ratioTarget('contended tryAcquire (returns the holder) vs C floor', 'contended', 2.5));
  verdicts.push(belowFsExt('contended vs fs-ext', 'contended'));
  verdicts.push(ratioTarget('isLocked, lock free, vs C floor', 'isLockedFree', 1.3));
  verdicts.push(belowFsExt('isLocked, lock free, vs fs-ext', 'isLockedFree'));
  verdicts.push(ratioTarget('isLocked, lock held, vs C floor', 'isLockedHeld', 1.3));
  verdicts.push(belowFsExt('isLocked, lock held, vs fs-ext', 'isLockedHeld'));
  verdicts.push(ratioTarget('status, held, vs C floor', 'statusHeld', 2));
  verdicts.push(
    quotientVerdict('handoff median vs the claiming C waiter', '<= 1.5x', find('handoff', 'loop-lock'), find('handoff', CLAIM_FLOOR)),
  );
  const lone = rows.find((r) => r.id === 'unmarked').results.filter((e) => e.kind === 'subject');
  const loneStatus = lone.find((e) => e.contender.startsWith('status'));
  const loneTarget = 'a lone status(), holder with no mark vs a loop-lock holder';
  verdicts.push(
    loneStatus?.available
      ? verdict(loneTarget, '<= 2x', loneStatus.ratio, loneStatus.ratio <= 2, 'x')
      : verdict(loneTarget, '<= 2x', null, null, 'x', loneStatus?.reason ?? 'not run'),
  );
  const abort = find('abort', 'loop-lock');
  if (abort?.available) {
    const clean = abort.wrongReason === 0 && abort.fdsAfter === abort.fdsBefore;
    verdicts.push(verdict('abort of a pending acquire(): slowest of all rejections', '< 5000 us', abort.maxUs, abort.maxUs < 5000, 'us'));
    verdicts.push(
      verdict('abort: rejects with signal.reason, descriptors unchanged', 'yes', clean ? 1 : 0, clean, 'bool'),
    );
  } else {
    verdicts.push(verdict('abort of a pending acquire()', '< 5000 us', null, null, 'us', abort?.reason ?? 'not run'));
  }
  for (const [id, what] of [
    ['release seen', 'a release'],
    ['acquisition seen', 'an acquisition'],
  ]) {
    const e = find('watch', id);
    const target = `watch(): ${what} in another process seen, median`;
    verdicts.push(
      e?.available
        ? verdict(target, '< 5000 us', e.medianUs, e.medianUs < 5000, 'us')
        : verdict(target, '< 5000 us', null, null, 'us', e?.reason ?? 'not run'),
    );
  }
  for (const id of ['watcher, loop-lock holder', 'watcher, unmarked holder (flock(1) + record)']) {
    const e = find('readers', id);
    const target = `watch(): ${id.slice('watcher, '.length)}, CPU per reader open/close vs one lone status()`;
    verdicts.push(
      e?.available ? verdict(target, '<= 2x', e.ratio, e.ratio <= 2, 'x') : verdict(target, '<= 2x', null, null, 'x', e?.reason ?? 'not run'),
    );
  }
  const mem = memory.results.find((e) => e.contender === 'loop-lock');
  if (mem?.available && mem.cycles < 1_000_000) {
    const reason = `the target is set for 1000000 cycles; this run made ${mem.cycles}`;
    verdicts.push(verdict('RSS growth and descriptors', '< 2048 KiB, 0', null, null, 'KiB', reason));
  } else if (mem?.available) {
    verdicts.push(
      verdict(`RSS growth over ${memory.cycles} cycles`, '< 2048 KiB', mem.rssGrowthKiB, mem.rssGrowthKiB < 2048, 'KiB'),
    );
    verdicts.push(
      verdict(
        `open descriptors after ${memory.cycles} cycles minus before`,
        '0',
        mem.fdsAfter - mem.fdsBefore,
        mem.fdsAfter === mem.fdsBefore,
        'fds',
      ),
    );
  } else {
    verdicts.push(verdict('RSS growth and descriptors', '< 2048 KiB, 0', null, null, 'KiB', mem?.reason ?? 'not run'));
  }
  return verdicts;
}

/** Everything `--json` prints; `printTable` renders the same object. */
function buildResult({ started, machine, config, contenders, timed, handoff, aborts, watch, unmarked, readers, memory }) {
  const rows = buildRows({ contenders, timed, handoff, aborts, watch, unmarked, readers, config });
  const memoryRow = buildMemory({ contenders, memory, config });
  return {
    date: started.toISOString(),
    machine,
    config,
    contenders: contenders.map((c) => ({
      name: c.name,
      kind: c.kind,
      version: c.kind === 'peer' ? versionOf(c.name) : null,
      available: c.ok,
      ...(c.ok
        ? {
            api: c.kind === 'floor' ? 'the syscalls of each row in C (bench/floor.c, cc -O2); see each row\'s "work"' : c.info.note,
            waitApi: c.info.waitNote ?? null,
          }
        : { reason: c.reason }),
    })),
    rows,
    memory: memoryRow,
    verdicts: buildVerdicts(rows, memoryRow),
  };
}

const fixed = (x, digits = 1) => (x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const label = (e) => (e.kind === 'subject' ? `**${e.contender}**` : e.kind === 'floor' ? 'C floor' : e.contender);
const kib = (x) => `${(x / 1024).toFixed(1)} MiB`;

function printTable(result) {
  const out = [];
  const m = result.machine;
  out.push(`### loop-lock benchmark, ${result.date.slice(0, 16).replace('T', ' ')} UTC`);
  out.push('');
  out.push(
    `${m.nproc} cores (nproc), ${m.cpu}, Linux ${m.kernel}, Node ${m.node}; ` +
      `temp dir ${m.tmpdir} on ${m.fileSystem}; load average ${m.loadavg.before[0].toFixed(2)} before, ` +
      `${m.loadavg.after[0].toFixed(2)} after.`,
  );
  const c = result.config;
  out.push(
    `Per call, in microseconds. ${c.rounds} rounds of ~${c.batchMs} ms batches per contender, order rotated ` +
      `each round; ${c.handoffs} handoffs and ${c.aborts} aborts per contender; ` +
      `"spread" is how far the per-round medians moved (max - min, % of the median).`,
  );
  out.push('');
  out.push('| operation | contender | median µs | p99 µs | × C floor | samples | spread |');
  out.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const row of result.rows) {
    row.results.forEach((e, i) => {
      const op = i === 0 ? row.title : '';
      if (!e.available) {
        out.push(`| ${op} | ${label(e)} | n/a (${e.reason}) | | | | |`);
        return;
      }
      const ratio = e.ratio === null ? '' : `${e.ratio.toFixed(2)}x`;
      out.push(
        `| ${op} | ${label(e)} | ${fixed(e.medianUs)} | ${fixed(e.p99Us)} | ${ratio} | ${e.samples} | ${e.spreadPct}% |`,
      );
    });
  }
  out.push('');
  out.push(
    '| 6. memory: row-1 cycles, after a warm-up of a fifth as many | cycles | RSS before | RSS after | growth | ' +
      'RSS range | fds before → after | seconds |',
  );
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const e of result.memory.results) {
    if (!e.available) {
      out.push(`| ${label(e)} | n/a (${e.reason}) | | | | | | |`);
      continue;
    }
    out.push(
      `| ${label(e)} | ${e.cycles} | ${kib(e.rssBeforeKiB)} | ${kib(e.rssAfterKiB)} | ${e.rssGrowthKiB} KiB | ` +
        `${e.rssRangeKiB} KiB | ${e.fdsBefore} → ${e.fdsAfter} | ${e.seconds.toFixed(1)} |`,
    );
  }
  out.push('');
  out.push(
    'RSS is read after a full GC at the start and after each tenth of the cycles; growth is the median of ' +
      'the last three readings minus the median of the first three, range is max - min of all eleven. ' +
      'Node contenders run with a 1 MB young generation (--max-semi-space-size=1), so that V8 growing it ' +
      'does not read as growth.',
  );
  out.push('');
  out.push('| target (DESIGN.md) | limit | measured | verdict |');
  out.push('| --- | --- | ---: | --- |');
  for (const v of result.verdicts) {
    const measured = v.value === null ? `n/a (${v.reason})` : v.unit === 'bool' ? (v.pass ? 'yes' : 'no') : `${v.value} ${v.unit}`;
    out.push(`| ${v.target} | ${v.limit} | ${measured} | ${v.pass === null ? '-' : v.pass ? 'pass' : 'FAIL'} |`);
  }
  out.push('');
  out.push('Contenders:');
  for (const e of result.contenders) {
    const name = e.version ? `${e.name} ${e.version}` : e.name;
    if (!e.available) {
      out.push(`- ${name}: n/a (${e.reason})`);
    } else if (e.kind === 'floor') {
      out.push('- C floor (bench/floor.c, cc -O2), per row:');
      for (const [row, work] of Object.entries(FLOOR_WORK)) out.push(`  - ${row}: ${work}`);
    } else {
      out.push(`- ${name}: ${e.api}${e.waitApi ? `; wait: ${e.waitApi}` : ''}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

module.exports = { CLAIM_FLOOR, TIMED_ROWS, buildResult, printTable };
