// Settings are checked before a process touches anything: every problem named by its variable, and fault
// injection refused where NODE_ENV=production (test/e2e/production-config.e2e.test.ts starts a real process).
import { z } from 'zod';
import { BaseEnv, parseEnv } from './env.js';

const ProcessEnv = BaseEnv.extend({ PORT: z.coerce.number().int().default(3103) });
const forbidden = 'FAULT_INJECTION: must not be true with NODE_ENV=production (fault plans are for tests and demos)';

test('the defaults make a valid configuration', () => {
  const parsed = parseEnv(ProcessEnv, {});
  expect(parsed.ok && parsed.data).toMatchObject({ FAULT_INJECTION: false, PORT: 3103 });
});

test.each(['true', '1', 'yes', 'on'])('FAULT_INJECTION=%s with NODE_ENV=production is refused, naming both', (value) => {
  expect(parseEnv(ProcessEnv, { NODE_ENV: 'production', FAULT_INJECTION: value })).toEqual({ ok: false, problems: [forbidden] });
});

test.each([
  [{ NODE_ENV: 'production' }],
  [{ NODE_ENV: 'production', FAULT_INJECTION: 'false' }],
  [{ NODE_ENV: 'test', FAULT_INJECTION: 'true' }],
  [{ FAULT_INJECTION: 'true' }],
])('%j is accepted', (env) => {
  expect(parseEnv(ProcessEnv, env).ok).toBe(true);
});

test('the combination is reported alongside the schema\'s own problems', () => {
  expect(parseEnv(ProcessEnv, { NODE_ENV: 'production', FAULT_INJECTION: 'true', PREFETCH: '0' })).toEqual({
    ok: false,
    problems: [expect.stringMatching(/^PREFETCH: /), forbidden],
  });
});
