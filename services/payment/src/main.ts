import { startParticipant } from '@sagaflow/shared';
import { AppModule } from './app.module.js';
import { env, logger } from './config.js';

await startParticipant({ service: 'payment', module: AppModule, env, logger, schema: 'payment' });
