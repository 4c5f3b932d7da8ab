import { BaseEnv, createLogger, loadEnv } from '@sagaflow/shared';
import { z } from 'zod';

export const env = loadEnv(
  BaseEnv.extend({
    PORT: z.coerce.number().int().default(3102),
    /** JSON file with the catalog to seed into an empty stock table; the built-in demo catalog otherwise. */
    CATALOG_SEED_FILE: z.string().optional(),
  }),
);
export const logger = createLogger('inventory', env.LOG_LEVEL);
