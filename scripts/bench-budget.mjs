// The work budget (`npm run bench -- --budget`): what one saga costs in counts that do not depend on the
// host's speed, checked against bench/budget.json. Times move with the host; these counts move with the code.
// At 1 in flight nothing is batched; at 64 only the counts that batching leaves alone are steady.

/**
 * The levels of a budget run, and the counts checked at each (keys of a bench ledger; see docs/performance.md).
 * System calls are measured and shown, not checked: how the kernel splits socket reads moves them by 14–26%
 * from run to run.
 */
export const BUDGET_LEVELS = {
  1: ['statements', 'commits', 'rowsWritten', 'nonHotUpdates', 'walKb', 'messages'],
  64: ['statements', 'rowsWritten', 'walKb', 'messages'],
};
/** Shown beside the budget, never checked. */
export const SHOWN_ONLY = ['reads', 'writes'];
/** A count may pass its budget by this share before the check fails. */
export const TOLERANCE = 0.1;

/** The counts of one level's ledger, flat. */
function countsOfLedger(ledger) {
  return {
    statements: ledger.statements,
    commits: ledger.commits,
    rowsWritten: ledger.rowsWritten,
    nonHotUpdates: ledger.nonHotUpdates,
    walKb: ledger.walKb,
    messages: ledger.messages,
    reads: ledger.appSyscalls?.reads ?? null,
    writes: ledger.appSyscalls?.writes ?? null,
  };
}

/** `{ "1": { statements: …, … }, "64": { … } }` from a bench run's rows of ours, only the counts budgeted. */
export function budgetCounts(ours) {
  return Object.fromEntries(
    Object.entries(BUDGET_LEVELS).map(([level, keys]) => {
      const row = ours.find((candidate) => candidate.concurrency === Number(level));
      const counts = row?.ledger ? countsOfLedger(row.ledger) : {};
      return [level, Object.fromEntries([...keys, ...SHOWN_ONLY].map((key) => [key, counts[key] ?? null]))];
    }),
  );
}

/**
 * Each budgeted count against its budget: over when it passes the budget by more than TOLERANCE, or was not
 * measured (a count that cannot be read must not pass silently). A count missing from the budget file fails too.
 */
export function checkBudget(budget, measured, tolerance = TOLERANCE) {
  const lines = [];
  for (const [level, keys] of Object.entries(BUDGET_LEVELS)) {
    for (const key of keys) {
      const limit = budget[level]?.[key];
      const value = measured[level]?.[key];
      const over = !Number.isFinite(limit) || !Number.isFinite(value) || value > limit * (1 + tolerance);
      const why = !Number.isFinite(limit) ? 'no budget' : !Number.isFinite(value) ? 'not measured' : over ? `over by ${(100 * (value / limit - 1)).toFixed(1)}%` : 'ok';
      lines.push({ level: Number(level), key, budget: limit ?? null, measured: value ?? null, over, why });
    }
  }
  return { ok: lines.every((line) => !line.over), lines };
}

/** A new budget from several runs: each count at the highest it reached, rounded to 0.1. */
export function highestOfRuns(runs) {
  const highest = {};
  for (const [level, keys] of Object.entries(BUDGET_LEVELS)) {
    highest[level] = Object.fromEntries(keys.map((key) => [key, Math.round(10 * Math.max(...runs.map((run) => run[level]?.[key] ?? Number.NaN))) / 10]));
  }
  return highest;
}

/** Each count over several runs, and its spread (highest / lowest - 1), as a markdown table. */
export function spreadTable(runs) {
  const rows = [];
  for (const [level, keys] of Object.entries(BUDGET_LEVELS)) {
    for (const key of [...keys, ...SHOWN_ONLY]) {
      const values = runs.map((run) => run[level]?.[key]).filter(Number.isFinite);
      if (!values.length) continue;
      const spread = 100 * (Math.max(...values) / Math.min(...values) - 1);
      rows.push(`| ${level} | ${key}${SHOWN_ONLY.includes(key) ? ' (shown only)' : ''} | ${values.map((value) => value.toFixed(1)).join(' / ')} | ${spread.toFixed(1)}% |`);
    }
  }
  return [`Per saga over ${runs.length} runs`, '', '| in flight | count | runs | spread |', '|---:|---|---|---:|', ...rows].join('\n');
}

/** The check as a markdown table. */
export function budgetTable({ ok, lines }, tolerance = TOLERANCE) {
  const number = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  return [
    `Work budget per saga (bench/budget.json, +${tolerance * 100}% allowed): ${ok ? 'within budget' : 'OVER BUDGET'}`,
    '',
    '| in flight | count | budget | measured | |',
    '|---:|---|---:|---:|---|',
    ...lines.map((line) => `| ${line.level} | ${line.key} | ${number(line.budget)} | ${number(line.measured)} | ${line.over ? `**${line.why}**` : line.why} |`),
  ].join('\n');
}
