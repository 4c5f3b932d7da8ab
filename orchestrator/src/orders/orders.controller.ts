import { Body, Controller, Get, Headers, HttpCode, NotFoundException, Param, Post, Query, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { CorrelationId, Id, OrderStatus } from '@sagaflow/shared';
import type { Response } from 'express';
import { z } from 'zod';
import { checkHeader, ZodPipe } from '../http/zod.pipe.js';
import { IdempotencyKey } from './idempotency-keys.js';
import { GetOrder, ListOrders } from './order-queries.js';
import { PlaceOrder, PlaceOrderBody } from './place-order.js';

const ListQuery = z.object({
  status: OrderStatus.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** The last order id of the previous page. */
  cursor: Id.optional(),
});

@Controller('orders')
export class OrdersController {
  constructor(
    private readonly commands: CommandBus,
    private readonly queries: QueryBus,
  ) {}

  /**
   * Accepts the order and starts its saga: 202, with the order to follow at Location. A repeat with the
   * same Idempotency-Key gets the first answer again, marked Idempotent-Replayed.
   */
  @Post()
  @HttpCode(202)
  async place(
    @Body(new ZodPipe(PlaceOrderBody)) body: PlaceOrderBody,
    @Headers('x-correlation-id') correlationId: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ) {
    const { order, replayed } = await this.commands.execute(
      new PlaceOrder(body, checkHeader('X-Correlation-Id', CorrelationId, correlationId), checkHeader('Idempotency-Key', IdempotencyKey, idempotencyKey)),
    );
    response.location(`/orders/${order.orderId}`);
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    return order;
  }

  @Get(':id')
  async get(@Param('id', new ZodPipe(Id)) id: string) {
    const order = await this.queries.execute(new GetOrder(id));
    if (!order) throw new NotFoundException(`no order ${id}`);
    return order;
  }

  @Get()
  list(@Query(new ZodPipe(ListQuery)) query: z.infer<typeof ListQuery>) {
    return this.queries.execute(new ListOrders(query.status, query.limit, query.cursor));
  }
}
