import { Body, Controller, ForbiddenException, Get, Headers, HttpCode, NotFoundException, Param, Post, Query, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { CorrelationId, Id, OrderStatus, Text } from '@sagaflow/shared';
import type { Response } from 'express';
import { z } from 'zod';
import { actsFor, Caller, type Principal } from '../auth/principal.js';
import { checkHeader, ZodPipe } from '../http/zod.pipe.js';
import { Admission, TooManyOrders } from './admission.js';
import { IdempotencyKey } from './idempotency-keys.js';
import { GetOrder, ListOrders } from './order-queries.js';
import { PlaceOrder, PlaceOrderBody } from './place-order.js';

export const OrderListQuery = z.strictObject({
  status: OrderStatus.optional(),
  customerId: Text(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: Id.optional().meta({ description: "The previous page's `nextCursor`: its last order id" }),
});

@Controller('orders')
export class OrdersController {
  constructor(
    private readonly commands: CommandBus,
    private readonly queries: QueryBus,
    private readonly admission: Admission,
  ) {}

  /**
   * Accepts the order and starts its saga: 202, with the order to follow at Location. A repeat with the
   * same Idempotency-Key gets the first answer again, marked Idempotent-Replayed. With too much work in
   * hand it places nothing: 429 with Retry-After.
   */
  @Post()
  @HttpCode(202)
  async place(
    @Body(new ZodPipe(PlaceOrderBody)) body: PlaceOrderBody,
    @Caller() caller: Principal,
    @Headers('x-correlation-id') correlationId: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ) {
    if (!actsFor(caller, body.customerId)) throw new ForbiddenException(`this token acts for customer ${caller.customerId} only`);
    try {
      this.admission.admit();
    } catch (error) {
      if (error instanceof TooManyOrders) response.setHeader('Retry-After', String(error.retryAfterSeconds));
      throw error;
    }
    const { order, replayed } = await this.commands.execute(
      new PlaceOrder(body, checkHeader('X-Correlation-Id', CorrelationId, correlationId), checkHeader('Idempotency-Key', IdempotencyKey, idempotencyKey)),
    );
    response.location(`/orders/${order.orderId}`);
    // Without one of the caller's (echoed by the HTTP middleware), the saga's correlation id is the order id.
    if (!correlationId) response.setHeader('X-Correlation-Id', order.orderId);
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    return order;
  }

  @Get(':id')
  async get(@Param('id', new ZodPipe(Id)) id: string, @Caller() caller: Principal) {
    const order = await this.queries.execute(new GetOrder(id));
    // Another customer's order is as good as absent.
    if (!order || !actsFor(caller, order.customerId)) throw new NotFoundException(`no order ${id}`);
    return order;
  }

  /** Newest first; a token bound to a customer sees that customer's orders only. */
  @Get()
  list(@Query(new ZodPipe(OrderListQuery)) query: z.infer<typeof OrderListQuery>, @Caller() caller: Principal) {
    if (query.customerId && !actsFor(caller, query.customerId)) throw new ForbiddenException(`this token acts for customer ${caller.customerId} only`);
    return this.queries.execute(new ListOrders(query.status, query.limit, query.cursor, caller.customerId ?? query.customerId));
  }
}
