import { startParticipant } from '@sagaflow/shared';
import { AppModule } from './app.module.js';
import { env, logger } from './config.js';

await startParticipant({ service: 'notification', module: AppModule, env, logger, schema: 'notification' });
