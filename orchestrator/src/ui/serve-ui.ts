import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts the dashboard's bundle (from orchestrator/ui; see orchestrator/ui/build.mjs). */
const ASSETS = fileURLToPath(new URL('../ui-assets/', import.meta.url));

/** Everything the page loads is its own: no CDN, no inline script, no framing. */
const HEADERS = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // Fixed file names: the browser asks again each time and gets 304 while the build is the same.
  'Cache-Control': 'no-cache',
};

/**
 * The dashboard at /ui: static files, public like any sign-in page. What it shows comes from the API
 * (/console, /orders, /ui/events), for operators only; a path that is no file falls through to the routes.
 */
export function serveUi(app: INestApplication): void {
  (app as NestExpressApplication).useStaticAssets(ASSETS, {
    prefix: '/ui',
    index: 'index.html',
    setHeaders: (response) => {
      for (const [name, value] of Object.entries(HEADERS)) response.setHeader(name, value);
    },
  });
}
