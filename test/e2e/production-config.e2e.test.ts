// Settings that must never run stop a built process before it connects to anything, named as for any bad
// setting: fault injection in production, and an API that would admit nobody. Needs only the build.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entryOf = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

function run(env: Record<string, string>, entry = entryOf('services/payment/dist/main.js')): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Unreachable dependencies: had the check let it through, the process would wait for them and be killed.
    const child = spawn(process.execPath, [entry], {
      env: { PATH: process.env.PATH ?? '', AMQP_URL: 'amqp://guest:guest@127.0.0.1:1/%2F', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 15_000,
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('the payment service refuses to start with fault injection in production, naming both', async () => {
  const { code, stderr } = await run({ NODE_ENV: 'production', FAULT_INJECTION: 'true' });
  expect(code).toBe(78);
  expect(stderr).toBe(
    'Invalid configuration:\n  FAULT_INJECTION: must not be true with NODE_ENV=production (fault plans are for tests and demos)\n',
  );
});

test('the orchestrator refuses to start with neither API_KEYS nor JWT settings, since its API would admit nobody', async () => {
  const { code, stderr } = await run({}, entryOf('orchestrator/dist/main.js'));
  expect(code).toBe(78);
  expect(stderr).toBe('Invalid configuration:\n  API_KEYS: set API_KEYS (role:key pairs) or JWT_JWKS_URL: the API admits nobody without one (npm start makes keys)\n');
});
