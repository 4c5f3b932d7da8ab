// Types of bench-budget.mjs, for the tests.
export type Counts = Record<string, number | null>;
export type Budget = Record<string, Counts>;
export type BudgetLine = { level: number; key: string; budget: number | null; measured: number | null; over: boolean; why: string };
export const BUDGET_LEVELS: Record<string, string[]>;
export const TOLERANCE: number;
export function budgetCounts(ours: { concurrency: number; ledger: Record<string, unknown> | null }[]): Budget;
export function checkBudget(budget: Budget, measured: Budget, tolerance?: number): { ok: boolean; lines: BudgetLine[] };
export function budgetTable(check: { ok: boolean; lines: BudgetLine[] }, tolerance?: number): string;
export const SHOWN_ONLY: string[];
export function highestOfRuns(runs: Budget[]): Budget;
export function spreadTable(runs: Budget[]): string;
