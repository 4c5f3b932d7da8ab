import type { EntityManager } from '@mikro-orm/postgresql';
import { BaseRpcContext } from '@nestjs/microservices';
import type { Envelope } from '../contracts/envelope.js';
import type { Queryable } from '../database/database.js';

/**
 * What a participant handler gets besides the payload (`@Ctx() ctx: CommandContext`): its statements in the
 * command's transaction, which also records the command in the inbox, and the command's metadata.
 */
export class CommandContext extends BaseRpcContext<[Queryable, Envelope]> {
  get tx(): Queryable {
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
