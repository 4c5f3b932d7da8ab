// Compiles every workspace's src/ to dist/ with swc (decorators + metadata on).
// TypeScript types are checked separately by `npm run typecheck`.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildUi } from '../orchestrator/ui/build.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const packages = ['shared', 'orchestrator', 'services/order', 'services/inventory', 'services/payment', 'services/notification'];
const swc = `${root}node_modules/.bin/swc`;

for (const pkg of packages) {
  rmSync(`${root}${pkg}/dist`, { recursive: true, force: true });
  execFileSync(swc, ['src', '-d', 'dist', '--strip-leading-paths', '--config-file', `${root}.swcrc`, '--quiet'], {
    cwd: `${root}${pkg}`,
    stdio: 'inherit',
  });
}

// The dashboard's front end, bundled into the orchestrator's dist (not src/, so swc leaves it alone); it serves it at /ui.
const sizes = await buildUi(`${root}orchestrator/dist/ui-assets`);
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
console.log(`dashboard: ${Object.entries(sizes).map(([file, size]) => `${file} ${kb(size.bytes)} (${kb(size.gzip)} gzipped)`).join(', ')}`);
