// Bundles the dashboard (Preact + TSX, with esbuild) into one script and one stylesheet, next to index.html:
// everything it loads is served by the orchestrator itself, so it works without a network.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Writes index.html, app.js and app.css to `outdir`; returns their sizes (bytes, and gzipped). */
export async function buildUi(outdir) {
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: { app: `${here}src/main.tsx` },
    outdir,
    bundle: true,
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(`${here}index.html`, `${outdir}/index.html`);
  return Object.fromEntries(
    ['app.js', 'app.css'].map((file) => {
      const content = readFileSync(`${outdir}/${file}`);
      return [file, { bytes: content.length, gzip: gzipSync(content).length }];
    }),
  );
}
