import { Controller, Get, NotFoundException, Param, Query } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { Id, InventoryQueries, NotificationQueries, PaymentQueries, Sku } from '@sagaflow/shared';
import { z } from 'zod';
import { ZodPipe } from '../http/zod.pipe.js';
import { AskService } from './ask-service.js';

const ByOrder = z.strictObject({ orderId: Id });

/** Read endpoints over the services' own data, so anyone can check the invariants from outside. */
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
  payments(@Query(new ZodPipe(ByOrder)) { orderId }: z.infer<typeof ByOrder>) {
    return this.queries.execute(AskService.for(PaymentQueries.forOrder, { orderId }));
  }

  @Get('notifications')
  notifications(@Query(new ZodPipe(ByOrder)) { orderId }: z.infer<typeof ByOrder>) {
    return this.queries.execute(AskService.for(NotificationQueries.forOrder, { orderId }));
  }
}
