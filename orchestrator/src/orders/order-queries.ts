import { MikroORM } from '@mikro-orm/postgresql';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { OrderStatus } from '@sagaflow/shared';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import { Saga, SagaHistory } from '../saga-engine/saga.entities.js';
import { SAGA_STATUSES_BY_ORDER_STATUS, toOrderView, type OrderPage, type OrderView } from './order.view.js';

export class GetOrder extends Query<OrderView | null> {
  constructor(readonly orderId: string) {
    super();
  }
}

@QueryHandler(GetOrder)
export class GetOrderHandler implements IQueryHandler<GetOrder> {
  constructor(private readonly orm: MikroORM) {}

  async execute({ orderId }: GetOrder): Promise<OrderView | null> {
    const em = this.orm.em.fork();
    const saga = await em.findOne(Saga, { type: orderSaga.name, businessKey: orderId });
    if (!saga) return null;
    const history = await em.find(SagaHistory, { sagaId: saga.id }, { orderBy: { seq: 'asc' } });
    return toOrderView(saga, history);
  }
}

export class ListOrders extends Query<OrderPage> {
  constructor(
    readonly status: OrderStatus | undefined,
    readonly limit: number,
    /** The last order id of the previous page; pages go newest first. */
    readonly cursor: string | undefined,
    readonly customerId?: string,
  ) {
    super();
  }
}

/** Keyset pagination over order ids (UUIDv7, so newest first is id descending). */
@QueryHandler(ListOrders)
export class ListOrdersHandler implements IQueryHandler<ListOrders> {
  constructor(private readonly orm: MikroORM) {}

  async execute({ status, limit, cursor, customerId }: ListOrders) {
    const sagas = await this.orm.em.fork().find(
      Saga,
      {
        type: orderSaga.name,
        ...(status ? { status: { $in: SAGA_STATUSES_BY_ORDER_STATUS[status] } } : {}),
        ...(cursor ? { businessKey: { $lt: cursor } } : {}),
        ...(customerId ? { state: { data: { customerId } } } : {}),
      },
      { orderBy: { businessKey: 'desc' }, limit: limit + 1 },
    );
    const page = sagas.slice(0, limit);
    return { orders: page.map((saga) => toOrderView(saga)), nextCursor: sagas.length > limit ? page[page.length - 1].businessKey : null };
  }
}
