'use strict';

/** Nearest-rank quantile of sorted numbers. */
function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

const sortedCopy = (values) => Float64Array.from(values).sort();

/**
 * Median, p99 and max in microseconds of nanosecond samples taken in
 * rounds, and the spread of the per-round medians (max - min, over the
 * overall median): how much the machine's other load moved the figures
 * during the run.
 */
function summarize(rounds) {
  const all = sortedCopy(rounds.flat());
  const median = quantile(all, 0.5);
  const roundMedians = rounds.filter((r) => r.length > 0).map((r) => quantile(sortedCopy(r), 0.5));
  const spread = roundMedians.length > 1 ? (Math.max(...roundMedians) - Math.min(...roundMedians)) / median : 0;
  return {
    medianUs: median / 1000,
    p99Us: quantile(all, 0.99) / 1000,
    maxUs: all[all.length - 1] / 1000,
    samples: all.length,
    spreadPct: Math.round(spread * 100),
  };
}

/** Samples taken one at a time, cut into rounds of `size` for `summarize`. */
function inRounds(samples, size) {
  const rounds = [];
  for (let i = 0; i < samples.length; i += size) rounds.push(samples.slice(i, i + size));
  return rounds;
}

module.exports = { inRounds, quantile, summarize };
