import { BaseEnv, createLogger, loadEnv } from '@sagaflow/shared';
import { z } from 'zod';

export const env = loadEnv(
  BaseEnv.extend({
    PORT: z.coerce.number().int().default(3103),
  }),
);
export const logger = createLogger('payment', env.LOG_LEVEL);
