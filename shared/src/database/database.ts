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

/** How long a process waits on PostgreSQL, at most: every pool of a process gets these. */
export interface DatabaseTimeouts {
  /** For a connection from the pool (a new one included); past it the database counts as away. */
  connectMs: number;
  /** For one statement (PostgreSQL cancels it: 57014). */
  statementMs: number;
  /** For a transaction left idle (PostgreSQL ends the session). */
  idleInTransactionMs: number;
}

/** The pg pool settings for those timeouts (MikroORM's pool takes the same). */
export const poolTimeouts = ({ connectMs, statementMs, idleInTransactionMs }: DatabaseTimeouts) => ({
  connectionTimeoutMillis: connectMs,
  statement_timeout: statementMs,
  idle_in_transaction_session_timeout: idleInTransactionMs,
});

/**
 * The per-message path's PostgreSQL: the pg driver itself, one transaction per batch of messages.
 * MikroORM keeps the schema, the migrations and the reads; a fork of its entity manager and a
 * transaction through its query builder per batch cost more CPU than the SQL they ran.
 */
export class Database implements Queryable {
  private readonly pool: pg.Pool;

  constructor(url: string, max: number, logger: Logger, timeouts?: DatabaseTimeouts) {
    // Pipelined: a statement is sent without waiting for the one before it to answer, so a transaction's
    // BEGIN travels with its first statement and its COMMIT with its last (Tx.commitWith).
    this.pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 60_000, pipeline: true, ...(timeouts && poolTimeouts(timeouts)) } as pg.PoolConfig);
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
   * `tx.commitWith`), rolled back if it throws. The connection is taken at the first statement, so work that
   * waits before it touches the database (a slow handler's own wait) holds none meanwhile.
   */
  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const tx = new Tx(() => this.pool.connect());
    try {
      const result = await work(tx);
      await tx.commit();
      return result;
    } catch (error) {
      await tx.rollback(error);
      throw error;
    } finally {
      tx.release();
    }
  }

  /** Nest calls this after the transports have finished the messages in hand. */
  onApplicationShutdown(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * The client's socket, corked: what is sent until it is uncorked leaves in one write (pg writes a simple query
 * such as BEGIN at once, and each prepared statement with a write of its own). Null if pg keeps no socket.
 */
function corked(client: pg.PoolClient): { uncork(): void } | null {
  const socket = (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
  if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return null;
  socket.cork();
  return socket as { uncork(): void };
}

/** A transaction in progress: statements, savepoints, and whether anything was written. */
export class Tx implements Queryable {
  /** Rows inserted, updated or deleted so far (a refusal that wrote nothing needs no rollback). */
  written = 0;
  /** Committed or rolled back already (by `commitWith`). */
  ended = false;
  private savepoints = 0;
  private client?: pg.PoolClient;
  private connecting?: Promise<pg.PoolClient>;
  /** The BEGIN, sent but not awaited: the first statement goes out behind it. */
  private begun?: Promise<unknown>;
  /** A backend killed between two statements errors the client itself: the next statement fails instead, and the client is destroyed. */
  private broken?: Error;
  private readonly lost = (error: Error) => (this.broken = error);
  private released = false;

  constructor(private readonly connect: () => Promise<pg.PoolClient>) {}

  /** The transaction's connection: taken, and the transaction begun, at its first statement. */
  private connection(): Promise<pg.PoolClient> {
    if (this.released) return Promise.reject(new CutLooseError('the transaction is over'));
    this.connecting ??= this.connect().then((client) => {
      this.client = client;
      client.on('error', this.lost);
      // The BEGIN and the first statement leave in one write when that statement follows in this tick.
      const socket = corked(client);
      this.begun = client.query('begin');
      this.begun.catch(() => undefined); // awaited by the first statement
      if (socket) process.nextTick(() => socket.uncork());
      return client;
    });
    return this.connecting;
  }

  async query<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
    const client = await this.connection();
    const result = await settleSpan(startDbSpan(statement.name), this.behindBegin(client.query({ name: statement.name, text: statement.text, values: values as unknown[] })));
    this.count(statement, result);
    return result.rows as Row[];
  }

  /**
   * The last statement and the COMMIT in one round trip. If the statement fails, PostgreSQL ends the
   * transaction at the COMMIT with a rollback, and this throws the statement's error.
   */
  async commitWith<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
    const client = await this.connection();
    const span = startDbSpan(statement.name, 'commit');
    const socket = corked(client);
    const last = this.behindBegin(client.query({ name: statement.name, text: statement.text, values: values as unknown[] }));
    const commit = settleSpan(span, client.query('commit'));
    socket?.uncork();
    this.ended = true;
    const [result, committed] = await Promise.allSettled([last, commit]);
    if (result.status === 'rejected') throw result.reason;
    if (committed.status === 'rejected') throw committed.reason;
    if (committed.value.command !== 'COMMIT') throw new Error(`the transaction ended with ${committed.value.command}, not COMMIT`);
    this.count(statement, result.value);
    return result.value.rows as Row[];
  }

  /** Commits, unless `commitWith` did (or no statement ever ran). */
  async commit(): Promise<void> {
    if (this.ended || !this.connecting) return;
    const client = await this.connection();
    this.ended = true;
    await this.behindBegin(client.query('commit'));
  }

  /** After a failure: rolls back what began; a connection that failed is marked to be destroyed. */
  async rollback(cause: unknown): Promise<void> {
    if (!this.connecting) return;
    const client = await this.connecting.catch(() => undefined);
    if (!client) return;
    if (isConnectionFailure(cause)) this.broken ??= cause as Error;
    else if (!this.ended) {
      this.ended = true;
      await client.query('rollback').catch((rollbackError: Error) => (this.broken = rollbackError));
    }
  }

  /** Gives the connection back (or destroys it, if it failed). */
  release(): void {
    this.released = true;
    if (!this.client) {
      // Still connecting (the work gave up first): the connection goes back as soon as it comes.
      void this.connecting?.then((client) => client.release(), () => undefined);
      return;
    }
    this.client.removeListener('error', this.lost);
    this.client.release(this.broken);
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
    const client = await this.connection();
    const name = `s${++this.savepoints}`;
    await this.behindBegin(client.query(`savepoint ${name}`));
    try {
      const result = await work();
      await client.query(`release savepoint ${name}`);
      return result;
    } catch (error) {
      if (!isConnectionFailure(error)) await client.query(`rollback to savepoint ${name}`);
      throw error;
    }
  }
}

/** A share of a transaction that was cut loose: the handler holding it took too long, and the transaction went on without it. */
export class CutLooseError extends Error {}

/**
 * One handler's share of a transaction that several handlers use in turn: its statements and what they
 * wrote are counted, and it can be cut loose (its later statements fail) when the handler is too slow, so
 * that the transaction need not wait for it.
 */
export class TxShare implements Queryable {
  written = 0;
  /** Statements of this share under way now. */
  running = 0;
  private cut?: CutLooseError;

  constructor(private readonly tx: Tx) {}

  async query<Row = Record<string, unknown>>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
    if (this.cut) throw this.cut;
    this.running++;
    const before = this.tx.written;
    try {
      return await this.tx.query<Row>(statement, values);
    } finally {
      this.running--;
      this.written += this.tx.written - before;
    }
  }

  /** From now on, this share's statements fail with `why`. */
  cutLoose(why: string): void {
    this.cut ??= new CutLooseError(why);
  }
}
