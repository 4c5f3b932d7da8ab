import type { EntityManager } from '@mikro-orm/postgresql';
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';

/**
 * Runs SQL with bind parameters on the entity manager's connection (inside its transaction, if one is
 * open). MikroORM 7's `em.execute` inlines every parameter into the SQL text: PostgreSQL then parses a
 * new statement each time, and large JSON values are escaped in JavaScript first. The per-message paths
 * (inbox, outbox, saga store) use this instead. Placeholders are `?`, numbered here.
 */
export async function sql<Row>(em: EntityManager, text: string, params: readonly unknown[] = []): Promise<Row[]> {
  const executor: Kysely<unknown> | Transaction<unknown> = em.getTransactionContext<Transaction<unknown>>() ?? em.getConnection().getClient<unknown>();
  const { rows } = await executor.executeQuery<Row>(CompiledQuery.raw(numbered(text), [...params]));
  return rows;
}

/** Numbered texts of the fixed statements; a batch's statement differs with each batch, so long ones are not kept. */
const cache = new Map<string, string>();
const CACHED_TEXT_MAX = 2_000;

/** `?` → `$1`, `$2`, ... (PostgreSQL's placeholders); our statements have no other `?`. */
function numbered(text: string): string {
  let result = cache.get(text);
  if (result === undefined) {
    let index = 0;
    result = text.replace(/\?/g, () => `$${++index}`);
    if (text.length <= CACHED_TEXT_MAX && cache.size < 1_000) cache.set(text, result);
  }
  return result;
}
