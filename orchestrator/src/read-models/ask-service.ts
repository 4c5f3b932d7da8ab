import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { QueryClient, type QueryContract } from '@sagaflow/shared';
import type { z } from 'zod';

/** Asks the service that owns the data (inventory, payments, notifications) over RabbitMQ. */
export class AskService<R> extends Query<R> {
  constructor(
    readonly query: QueryContract,
    readonly payload: unknown,
  ) {
    super();
  }

  static for<P extends z.ZodType, R extends z.ZodType>(query: QueryContract<P, R>, payload: z.input<P>): AskService<z.output<R>> {
    return new AskService(query, payload);
  }
}

@QueryHandler(AskService)
export class AskServiceHandler implements IQueryHandler<AskService<unknown>> {
  constructor(private readonly client: QueryClient) {}

  execute({ query, payload }: AskService<unknown>): Promise<unknown> {
    return this.client.ask(query, payload);
  }
}
