import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// The /docs page: Swagger UI from swagger-ui-dist, served by this process (no CDN), reading /openapi.json.

const swaggerUi = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** No inline script, so a strict Content-Security-Policy in front of the API needs no exception. */
const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // The token entered under Authorize survives a reload (in this browser's local storage).
  persistAuthorization: true,
  // The default would send the document to swagger.io's validator for a badge.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

/** What /docs/{asset} serves: a file of swagger-ui-dist, or text of ours. */
export const DOCS_ASSETS: Record<string, { type: string } & ({ file: string } | { text: string })> = {
  'swagger-ui.css': { type: 'text/css', file: join(swaggerUi, 'swagger-ui.css') },
  'swagger-ui-bundle.js': { type: 'text/javascript', file: join(swaggerUi, 'swagger-ui-bundle.js') },
  'init.js': { type: 'text/javascript', text: INIT },
};

export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sagaflow API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;
