import { startProcess } from '@sagaflow/shared';
import { AppModule } from './app.module.js';
import { env, logger, requireAuthSettings } from './config.js';
import { UnavailableFilter } from './http/unavailable.filter.js';
import { serveUi } from './ui/serve-ui.js';

requireAuthSettings();
await startProcess({
  module: AppModule,
  env,
  logger,
  schema: 'orchestrator',
  beforeListen: async (app) => {
    app.useGlobalFilters(new UnavailableFilter(app.getHttpAdapter()));
    serveUi(app);
  },
});
