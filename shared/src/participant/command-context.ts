import type { EntityManager } from '@mikro-orm/postgresql';
import { BaseRpcContext } from '@nestjs/microservices';
import type { Envelope } from '../contracts/envelope.js';
import type { Tx } from '../database/database.js';

/**
 * What a participant handler gets besides the payload (`@Ctx() ctx: CommandContext`): the command's
 * transaction, which also records the command in the inbox, and the command's metadata.
 */
export class CommandContext extends BaseRpcContext<[Tx, Envelope]> {
  get tx(): Tx {
    return this.args[0];
  }
  get command(): Envelope {
    return this.args[1];
  }
}

/** What a query handler gets: a fresh, read-only use of the service's entity manager. */
export class QueryContext extends BaseRpcContext<[EntityManager]> {
  get em(): EntityManager {
    return this.args[0];
  }
}
