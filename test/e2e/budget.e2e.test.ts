// The work budget catches a change that adds one statement per message: `npm run bench -- --budget`, with
// test/fixtures/extra-statement.mjs loaded into every process, must fail on statements. (.ci/run runs the
// budget check on the code as it is.) Needs pg_stat_statements in shared_preload_libraries.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from './run-script.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('one more statement per message fails the budget, on statements', async () => {
  const out = mkdtempSync(join(tmpdir(), 'sagaflow-budget-'));
  try {
    const fixture = join(root, 'test/fixtures/extra-statement.mjs');
    const { code, output } = await runScript('bench.mjs', ['--budget', '--secs', '6', '--out', out, '--log-level', 'warn'], { NODE_OPTIONS: `--import=${fixture}` });
    expect(output).not.toMatch(/pg_stat_statements: /); // statements were counted
    expect(output).toMatch(/\| 1 \| statements \| [\d.]+ \| [\d.]+ \| \*\*over by/);
    expect(output).toMatch(/\| 64 \| statements \| [\d.]+ \| [\d.]+ \| \*\*over by/);
    expect(code).toBe(1);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 240_000);
