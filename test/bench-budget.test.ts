// The work budget's check (scripts/bench-budget.mjs), on made-up ledgers: what passes and what fails.
// test/e2e/budget.e2e.test.ts runs it against the real system.
import { BUDGET_LEVELS, budgetCounts, checkBudget, highestOfRuns, SHOWN_ONLY } from '../scripts/bench-budget.mjs';

const ledger = { statements: 40, commits: 11, rowsWritten: 30, nonHotUpdates: 2, walKb: 12, messages: 10, appSyscalls: { reads: 60, writes: 64 } };
const budget = budgetCounts([
  { concurrency: 1, ledger },
  { concurrency: 64, ledger: { ...ledger, statements: 20 } },
]);

test('a run that costs what the budget says passes, and so does one within 10% of it', () => {
  expect(checkBudget(budget, budget).ok).toBe(true);
  const within = budgetCounts([
    { concurrency: 1, ledger: { ...ledger, statements: 43.9 } },
    { concurrency: 64, ledger: { ...ledger, statements: 21.9 } },
  ]);
  expect(checkBudget(budget, within).ok).toBe(true);
});

test('one more statement per message fails it, at both levels', () => {
  const more = budgetCounts([
    { concurrency: 1, ledger: { ...ledger, statements: ledger.statements + ledger.messages } },
    { concurrency: 64, ledger: { ...ledger, statements: 20 + ledger.messages } },
  ]);
  const check = checkBudget(budget, more);
  expect(check.ok).toBe(false);
  expect(check.lines.filter((line) => line.over).map((line) => `${line.level} ${line.key}`)).toEqual(['1 statements', '64 statements']);
});

test('a count that was not measured, or has no budget, fails rather than passes', () => {
  const unmeasured = budgetCounts([{ concurrency: 1, ledger: { ...ledger, statements: null } }, { concurrency: 64, ledger }]);
  expect(checkBudget(budget, unmeasured).lines.find((line) => line.level === 1 && line.key === 'statements')).toMatchObject({ over: true, why: 'not measured' });
  const { statements: _dropped, ...rest } = budget[1];
  expect(checkBudget({ ...budget, 1: rest }, budget).lines.find((line) => line.level === 1 && line.key === 'statements')).toMatchObject({ over: true, why: 'no budget' });
});

test('commits are budgeted only at 1 in flight, where nothing is batched', () => {
  expect(BUDGET_LEVELS[1]).toContain('commits');
  expect(BUDGET_LEVELS[64]).not.toContain('commits');
});

test('system calls are shown beside the budget, never checked: they move by 14–26% from run to run', () => {
  expect(SHOWN_ONLY).toEqual(['reads', 'writes']);
  const moreCalls = budgetCounts([
    { concurrency: 1, ledger: { ...ledger, appSyscalls: { reads: 600, writes: 640 } } },
    { concurrency: 64, ledger: { ...ledger, statements: 20 } },
  ]);
  expect(moreCalls[1]).toMatchObject({ reads: 600, writes: 640 });
  expect(checkBudget(budget, moreCalls).ok).toBe(true);
});

test('a new budget takes each checked count at its highest over the runs', () => {
  const lower = budgetCounts([
    { concurrency: 1, ledger: { ...ledger, statements: 38.04, commits: 12 } },
    { concurrency: 64, ledger: { ...ledger, statements: 21.26 } },
  ]);
  const highest = highestOfRuns([budget, lower]);
  expect(highest[1]).toMatchObject({ statements: 40, commits: 12 });
  expect(highest[64]).toMatchObject({ statements: 21.3 });
  expect(highest[1]).not.toHaveProperty('reads');
});
