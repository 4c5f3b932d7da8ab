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

test('AMQP_URL is one broker or a comma-separated list of a cluster\'s nodes, each a URL', () => {
  const one = parseEnv(ProcessEnv, { AMQP_URL: 'amqp://u:p@rabbit:5672/%2F' });
  expect(one.ok && one.data.AMQP_URL).toEqual(['amqp://u:p@rabbit:5672/%2F']);
  const three = parseEnv(ProcessEnv, { AMQP_URL: 'amqp://u:p@rabbit-1:5672/%2F, amqp://u:p@rabbit-2:5672/%2F,amqp://u:p@rabbit-3:5672/%2F' });
  expect(three.ok && three.data.AMQP_URL).toEqual(['amqp://u:p@rabbit-1:5672/%2F', 'amqp://u:p@rabbit-2:5672/%2F', 'amqp://u:p@rabbit-3:5672/%2F']);
  const bad = parseEnv(ProcessEnv, { AMQP_URL: 'amqp://u:p@rabbit-1:5672/%2F,not a url' });
  expect(bad).toEqual({ ok: false, problems: [expect.stringMatching(/^AMQP_URL\.1: /)] });
});

test('MAX_DELIVERIES stays at or below the quorum queues\' broker limit, which backs it up', () => {
  expect(parseEnv(ProcessEnv, { MAX_DELIVERIES: '20' }).ok).toBe(true);
  expect(parseEnv(ProcessEnv, { MAX_DELIVERIES: '21' })).toEqual({ ok: false, problems: [expect.stringMatching(/^MAX_DELIVERIES: /)] });
});
