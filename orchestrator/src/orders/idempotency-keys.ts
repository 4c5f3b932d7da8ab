import { createHash } from 'node:crypto';
import { canonicalJson, type Queryable, type Retention, statement } from '@sagaflow/shared';
import { z } from 'zod';

const TABLE = '"orchestrator"."idempotency_key"';

/** What a request with an Idempotency-Key finds: nothing yet (it claimed the key), or the first request's row. */
export type KeyClaim = { claimed: true } | { claimed: false; requestHash: string; response: unknown };

/** The Idempotency-Key header is optional; when given it must be 1–255 printable ASCII characters. */
export const IdempotencyKey = z.string().regex(/^[\x20-\x7e]{1,255}$/, 'must be 1 to 255 printable ASCII characters');

/** Same request = same validated body, whatever its key order or whitespace on the wire. */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

const EXPIRE = statement('idempotency.expire', `delete from ${TABLE} where scope = $1 and key = $2 and expires_at <= now()`);
const CLAIM = statement(
  'idempotency.claim',
  `insert into ${TABLE} (scope, key, request_hash, order_id, created_at, expires_at)
   values ($1, $2, $3, $4, now(), now() + $5 * interval '1 hour') on conflict do nothing returning key`,
);
const FIRST = statement('idempotency.first', `select request_hash, response from ${TABLE} where scope = $1 and key = $2`);
const RESPOND = statement('idempotency.respond', `update ${TABLE} set response = $3 where scope = $1 and key = $2`);

/**
 * Claims (scope, key) inside the caller's transaction. An expired row is deleted first, so the key can be
 * used afresh. A concurrent request holding the same key makes the insert wait until it commits; the
 * insert then does nothing and the committed row is read instead.
 */
export async function claimKey(
  tx: Queryable,
  claim: { scope: string; key: string; requestHash: string; orderId: string; ttlHours: number },
): Promise<KeyClaim> {
  const { scope, key } = claim;
  await tx.query(EXPIRE, [scope, key]);
  const inserted = await tx.query(CLAIM, [scope, key, claim.requestHash, claim.orderId, claim.ttlHours]);
  if (inserted.length > 0) return { claimed: true };
  const [row] = await tx.query<{ request_hash: string; response: unknown }>(FIRST, [scope, key]);
  // Only possible if the row expired and was swept between the insert and this read.
  if (!row) throw new Error(`idempotency key ${key} vanished; retry the request`);
  return { claimed: false, requestHash: row.request_hash, response: row.response };
}

/** Stores the response to replay, in the same transaction as the claim (so a committed key always has one). */
export async function storeResponse(tx: Queryable, scope: string, key: string, response: unknown): Promise<void> {
  await tx.query(RESPOND, [scope, key, JSON.stringify(response)]);
}

/** Expired keys go with the retention sweep (an expired key is also deleted when it is used again). */
export const IDEMPOTENCY_KEY_RETENTION: Retention = { what: 'idempotency keys', table: TABLE, column: 'expires_at', keepSeconds: 0 };
