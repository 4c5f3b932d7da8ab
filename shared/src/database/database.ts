import pg from 'pg';
import type { Logger } from 'pino';
import { isConnectionFailure } from '../messaging/errors.js';
import { settleSpan, startDbSpan } from '../observability/tracing.js';

/**
 * A statement with fixed text. It is prepared once per connection under its name, so PostgreSQL parses
 * and plans it once; values always travel as parameters (arrays through `unnest`, batches as one JSON document), never in the text.
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
  /** A select whose CTEs write (`with x as (update ...) select ...`): its row count says nothing of what it wrote. */
  readonly writesInCte: boolean;
}

export const statement = (name: string, text: string): Statement => ({ name, text, writesInCte: /\bas\s*\(\s*(insert|update|delete)\b/i.test(text) });

/** Where a statement can run: the database (autocommit) or a transaction. */
export interface Queryable {
  query<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]>;
}

/**
 * The per-message path's PostgreSQL: the pg driver itself, one transaction per batch of messages.
 * MikroORM keeps the schema, the migrations and the reads; a fork of its entity manager and a
 * transaction through its query builder per batch cost more CPU than the SQL they ran.
 */
export class Database implements Queryable {
  private readonly pool: pg.Pool;

  constructor(url: string, max: number, logger: Logger) {
    // Pipelined: a statement is sent without waiting for the one before it to answer, so a transaction's
    // BEGIN travels with its first statement and its COMMIT with its last (Tx.commitWith).
    this.pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 60_000, pipeline: true } as pg.PoolConfig);
    // A backend killed while idle in the pool: the pool drops that client, and the next query gets a fresh one.
    this.pool.on('error', (error) => logger.warn({ err: error.message }, 'idle PostgreSQL connection lost'));
  }

  /** One statement on its own (autocommit). */
  async query<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
    const result = await settleSpan(startDbSpan(statement.name), this.pool.query({ name: statement.name, text: statement.text, values: values as unknown[] }));
    return result.rows as Row[];
  }

  /**
   * Runs `work` in a transaction: committed if it resolves (unless it committed already with
   * `tx.commitWith`), rolled back if it throws.
   */
  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A backend killed between two statements errors the client itself (no query to fail): without a
    // listener that would be an uncaught 'error' event. The next statement then fails instead.
    let broken: Error | undefined;
    const lost = (error: Error) => (broken = error);
    client.on('error', lost);
    let tx: Tx | undefined;
    try {
      const begun = client.query('begin');
      begun.catch(() => undefined); // awaited by the first statement; a transaction with none must not leave it unhandled
      tx = new Tx(client, begun);
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (error) {
      if (isConnectionFailure(error)) broken = error as Error;
      else if (!tx?.ended) await client.query('rollback').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      // A client whose connection failed is destroyed, not handed to the next transaction.
      client.removeListener('error', lost);
      client.release(broken);
    }
  }

  /** Nest calls this after the transports have finished the messages in hand. */
  onApplicationShutdown(): Promise<void> {
    return this.pool.end();
  }
}

/** A transaction in progress: statements, savepoints, and whether anything was written. */
export class Tx implements Queryable {
  /** Rows inserted, updated or deleted so far (a refusal that wrote nothing needs no rollback). */
  written = 0;
  /** Committed or rolled back already (by `commitWith`). */
  ended = false;
  private savepoints = 0;

  constructor(
    private readonly client: pg.PoolClient,
    /** The BEGIN, sent but not awaited: the first statement goes out behind it. */
    private begun: Promise<unknown> | undefined,
  ) {}

  async query<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
    const result = await settleSpan(startDbSpan(statement.name), this.behindBegin(this.client.query({ name: statement.name, text: statement.text, values: values as unknown[] })));
    this.count(statement, result);
    return result.rows as Row[];
  }

  /**
   * The last statement and the COMMIT in one round trip. If the statement fails, PostgreSQL ends the
   * transaction at the COMMIT with a rollback, and this throws the statement's error.
   */
  async commitWith<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
    const span = startDbSpan(statement.name, 'commit');
    const last = this.behindBegin(this.client.query({ name: statement.name, text: statement.text, values: values as unknown[] }));
    const commit = settleSpan(span, this.client.query('commit'));
    this.ended = true;
    const [result, committed] = await Promise.allSettled([last, commit]);
    if (result.status === 'rejected') throw result.reason;
    if (committed.status === 'rejected') throw committed.reason;
    if (committed.value.command !== 'COMMIT') throw new Error(`the transaction ended with ${committed.value.command}, not COMMIT`);
    this.count(statement, result.value);
    return result.value.rows as Row[];
  }

  /** Commits, unless `commitWith` did. */
  async commit(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.behindBegin(this.client.query('commit'));
  }

  /** A statement's result, once the BEGIN it was sent behind has answered too (its failure comes first). */
  private async behindBegin<T>(result: Promise<T>): Promise<T> {
    if (this.begun) {
      const begun = this.begun;
      this.begun = undefined;
      await Promise.all([begun, result]);
    }
    return result;
  }

  private count(statement: Statement, result: pg.QueryResult): void {
    if (result.command === 'INSERT' || result.command === 'UPDATE' || result.command === 'DELETE') this.written += result.rowCount ?? 0;
    else if (statement.writesInCte) this.written += 1;
  }

  /** Runs `work` in a savepoint: if it throws, only its own changes are undone. */
  async savepoint<T>(work: () => Promise<T>): Promise<T> {
    const name = `s${++this.savepoints}`;
    await this.behindBegin(this.client.query(`savepoint ${name}`));
    try {
      const result = await work();
      await this.client.query(`release savepoint ${name}`);
      return result;
    } catch (error) {
      if (!isConnectionFailure(error)) await this.client.query(`rollback to savepoint ${name}`);
      throw error;
    }
  }
}
