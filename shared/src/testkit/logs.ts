import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The lines of a system's logs that show a bug: an HTTP answer of 5xx other than 503 (a dependency out of
 * reach), or an exception no handler took (Nest's ExceptionsHandler, an uncaught error or an unhandled
 * rejection). Client mistakes are 4xx and are not listed. `recursive`: the suites' own systems' folders too.
 */
export function serverErrorsIn(logDir: string, { recursive = false } = {}): string[] {
  const found: string[] = [];
  const entries = readdirSync(logDir, { withFileTypes: true });
  if (recursive) for (const dir of entries.filter((entry) => entry.isDirectory())) found.push(...serverErrorsIn(join(logDir, dir.name), { recursive }));
  for (const file of entries.filter((entry) => entry.isFile() && entry.name.endsWith('.log')).map((entry) => entry.name)) {
    for (const line of readFileSync(join(logDir, file), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: { res?: { statusCode?: number }; context?: string; msg?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      const status = entry.res?.statusCode ?? 0;
      if ((status >= 500 && status !== 503) || entry.context === 'ExceptionsHandler' || /uncaught|unhandled/i.test(entry.msg ?? '')) found.push(`${file}: ${line.slice(0, 500)}`);
    }
  }
  return found;
}
