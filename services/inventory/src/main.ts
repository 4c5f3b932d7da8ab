import { MikroORM } from '@mikro-orm/postgresql';
import { startParticipant } from '@sagaflow/shared';
import { AppModule } from './app.module.js';
import { seedCatalog } from './catalog.seed.js';
import { env, logger } from './config.js';

await startParticipant({
  service: 'inventory',
  module: AppModule,
  env,
  logger,
  schema: 'inventory',
  onMigrated: async (app) => {
    const seeded = await seedCatalog(app.get(MikroORM).em.fork(), env.CATALOG_SEED_FILE);
    if (seeded) logger.info({ items: seeded }, 'catalog seeded');
  },
});
