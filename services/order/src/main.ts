import { startParticipant } from '@sagaflow/shared';
import { AppModule } from './app.module.js';
import { env, logger } from './config.js';

await startParticipant({ service: 'order', module: AppModule, env, logger, schema: 'order' });
