import { Controller, Get, NotFoundException, Param, Query } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { actsFor, Caller, type Principal } from '../auth/principal.js';
import { GetOrder } from '../orders/order-queries.js';
import { Id, InventoryQueries, NotificationQueries, PaymentQueries, Sku } from '@sagaflow/shared';
import { z } from 'zod';
import { ZodPipe } from '../http/zod.pipe.js';
import { AskService } from './ask-service.js';

export const ByOrder = z.strictObject({ orderId: Id });

/** Read endpoints over the services' own data, so a client can check the invariants from outside. */
@Controller()
export class ReadController {
  constructor(private readonly queries: QueryBus) {}

  @Get('inventory')
  catalog() {
    return this.queries.execute(AskService.for(InventoryQueries.catalog, {}));
  }

  @Get('inventory/:sku')
  async stockItem(@Param('sku', new ZodPipe(Sku)) sku: string) {
    const item = await this.queries.execute(AskService.for(InventoryQueries.item, { sku }));
    if (!item) throw new NotFoundException(`no SKU ${sku} in the catalog`);
    return item;
  }

  /** Charges and refunds of one order, amounts in minor units. */
  @Get('payments')
  async payments(@Query(new ZodPipe(ByOrder)) { orderId }: z.infer<typeof ByOrder>, @Caller() caller: Principal) {
    await this.checkActsFor(caller, orderId);
    return this.queries.execute(AskService.for(PaymentQueries.forOrder, { orderId }));
  }

  @Get('notifications')
  async notifications(@Query(new ZodPipe(ByOrder)) { orderId }: z.infer<typeof ByOrder>, @Caller() caller: Principal) {
    await this.checkActsFor(caller, orderId);
    return this.queries.execute(AskService.for(NotificationQueries.forOrder, { orderId }));
  }

  /** A token bound to a customer reads that customer's orders only; another's order is as good as absent. */
  private async checkActsFor(caller: Principal, orderId: string): Promise<void> {
    if (caller.customerId === undefined) return;
    const order = await this.queries.execute(new GetOrder(orderId));
    if (!order || !actsFor(caller, order.customerId)) throw new NotFoundException(`no order ${orderId}`);
  }
}
