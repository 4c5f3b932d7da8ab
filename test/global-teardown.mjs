import { serverErrorsIn } from '../shared/dist/testkit/index.js';

// Nothing in the whole run may cause a 5xx or an exception no handler took, in any process of any system the
// suites started (their logs are under the run's folder): such a line means a bug, so the run fails on it.
export default async function globalTeardown() {
  const { logDir } = globalThis.__sagaflow;
  await globalThis.__sagaflow.dispose();
  const found = serverErrorsIn(logDir, { recursive: true });
  if (found.length) throw new Error(`${found.length} server errors in the processes' logs (${logDir}):\n${found.slice(0, 20).join('\n')}`);
}
