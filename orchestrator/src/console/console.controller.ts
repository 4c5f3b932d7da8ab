import { type FilterQuery, MikroORM } from '@mikro-orm/postgresql';
import { BadRequestException, Body, ConflictException, Controller, Get, NotFoundException, Param, Post, Query } from '@nestjs/common';
import { Id, isId, SagaStatus, Text, traceIdOf } from '@sagaflow/shared';
import { z } from 'zod';
import { Caller, type Principal, RequireRole } from '../auth/principal.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { SagaNotFoundError } from '../saga-engine/saga-engine.js';
import { SagaRuntime } from '../saga-engine/saga-runtime.js';
import { Awaiting, NotAllowedError } from '../saga-engine/saga-state.js';
import { Saga } from '../saga-engine/saga.entities.js';
import { OrderView, toOrderView } from '../orders/order.view.js';
import { DEAD_LETTER_QUEUES, DeadLetter, DeadLetterPage, DeadLetters } from './dead-letters.js';

/** Dead letters are named by their message id as it came: any printable text, since malformed ones land there too. */
const MessageIds = z.array(Text(255)).min(1).max(1000);
/** A replay's reason, if given, is recorded in each saga's history with the replay. */
const ReplayReason = Text(500).optional();
export const ReplayBody = z.union([z.strictObject({ messageIds: MessageIds, reason: ReplayReason }), z.strictObject({ all: z.literal(true), reason: ReplayReason })]);
export const DiscardBody = z.strictObject({ messageIds: MessageIds, reason: Text(500) });
export const NoteBody = z.strictObject({ reason: Text(500) });
/** Ten years: the longest a saga can sensibly have been stuck or running. */
const MAX_AGE_SECONDS = 10 * 365 * 24 * 3600;
const DeadLetterQueue = z.enum(DEAD_LETTER_QUEUES as [string, ...string[]]);
export const DeadLetterQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z
    .string()
    .regex(/^[a-z.]{1,100}:\d{1,9}$/, 'must be a nextCursor as a page gave it')
    .transform((cursor) => ({ queue: cursor.slice(0, cursor.lastIndexOf(':')), position: Number(cursor.slice(cursor.lastIndexOf(':') + 1)) }))
    .refine((cursor) => DEAD_LETTER_QUEUES.includes(cursor.queue), 'names no dead-letter queue')
    .optional()
    .meta({ description: "Where the page starts, as the last page's `nextCursor` gave it: `<queue>:<position>`" }),
  queue: DeadLetterQueue.optional().meta({ description: 'One .dlq only' }),
});
export const SagaQuery = z.strictObject({
  status: SagaStatus.optional(),
  stuckForSeconds: z.coerce.number().int().min(1).max(MAX_AGE_SECONDS).optional().meta({ description: 'Not finished, and no progress for this long' }),
  runningForSeconds: z.coerce.number().int().min(1).max(MAX_AGE_SECONDS).optional().meta({ description: 'Not finished, and started this long ago' }),
  setAside: z
    .stringbool()
    .optional()
    .meta({ description: 'true: only sagas whose awaited command was set aside (it can never be published as it is)' }),
  orderId: Id.optional().meta({ description: 'The saga of this order' }),
  customerId: Text(100).optional(),
  createdFrom: z.iso.datetime({ offset: true }).optional().meta({ description: 'Started at or after this time (ISO 8601 with an offset)' }),
  createdTo: z.iso.datetime({ offset: true }).optional().meta({ description: 'Started before this time (ISO 8601 with an offset)' }),
  sort: z.enum(['updatedAt', '-createdAt']).default('updatedAt').meta({ description: '`updatedAt`: longest without progress first; `-createdAt`: newest first' }),
  limit: z.coerce.number().int().min(1).max(500).default(100),
}).refine((query) => !query.createdFrom || !query.createdTo || Date.parse(query.createdFrom) < Date.parse(query.createdTo), {
  path: ['createdTo'],
  message: 'must be later than createdFrom',
});

/** A page of dead letters, each with its saga: the order, the step its command belongs to, the saga's status. */
export const ConsoleDeadLetterPage = DeadLetterPage.extend({
  deadLetters: z.array(DeadLetter.extend({ orderId: z.string().nullable(), step: z.string().nullable(), sagaStatus: SagaStatus.nullable() })),
});
/** A saga as the console lists it: its order, its correlation id, and the command it waits for. */
export const ConsoleSaga = OrderView.extend({ correlationId: z.string(), traceId: z.string().nullable(), awaiting: Awaiting.nullable() });

/**
 * The failed-saga console: dead letters with their saga and step (replay, discard), sagas that need a person
 * (by status, stuck, running too long), and what a person may do about one (retry its step, compensate it).
 * Every action is recorded in the saga's history.
 */
@RequireRole('operator')
@Controller('console')
export class ConsoleController {
  constructor(
    private readonly deadLetters: DeadLetters,
    private readonly runtime: SagaRuntime,
    private readonly orm: MikroORM,
  ) {}

  /** A page of dead letters (headers, never bodies) with their sagas, and every parking queue's depth. */
  @Get('dead-letters')
  async listDeadLetters(@Query(new ZodPipe(DeadLetterQuery)) query: z.infer<typeof DeadLetterQuery>): Promise<z.infer<typeof ConsoleDeadLetterPage>> {
    if (query.queue && query.cursor && query.cursor.queue !== query.queue) throw new BadRequestException(`cursor is for ${query.cursor.queue}, not ${query.queue}`);
    const page = await this.deadLetters.page(query.limit, query.cursor, query.queue);
    const sagas = await this.sagasById(page.deadLetters.map((letter) => letter.sagaId));
    const deadLetters = page.deadLetters.map((letter) => {
      const saga = letter.sagaId ? sagas.get(letter.sagaId) : undefined;
      return {
        ...letter,
        orderId: saga?.businessKey ?? null,
        step: saga && letter.type ? this.runtime.engine.stepFor(saga.type, letter.type) : null,
        sagaStatus: saga?.status ?? null,
      };
    });
    return { ...page, deadLetters };
  }

  @Post('dead-letters/replay')
  async replay(@Body(new ZodPipe(ReplayBody)) body: z.infer<typeof ReplayBody>, @Caller() caller: Principal) {
    const result = await this.deadLetters.replay('all' in body ? 'all' : body.messageIds);
    const why = body.reason ? `: ${body.reason}` : '';
    await this.runtime.engine.recordOperatorActions(
      result.replayed.flatMap((letter) =>
        letter.sagaId ? [{ sagaId: letter.sagaId, action: 'replay', detail: `dead letter ${letter.type} replayed to ${letter.originalQueue}${why}`, actor: caller.id, messageId: letter.messageId }] : [],
      ),
    );
    return result;
  }

  @Post('dead-letters/discard')
  async discard(@Body(new ZodPipe(DiscardBody)) body: z.infer<typeof DiscardBody>, @Caller() caller: Principal) {
    const result = await this.deadLetters.discard(body.messageIds);
    await this.runtime.engine.recordOperatorActions(
      result.discarded.flatMap((letter) =>
        letter.sagaId ? [{ sagaId: letter.sagaId, action: 'discard', detail: `dead letter ${letter.type} discarded: ${body.reason}`, actor: caller.id, messageId: letter.messageId }] : [],
      ),
    );
    return result;
  }

  @Get('sagas')
  async sagas(@Query(new ZodPipe(SagaQuery)) query: z.infer<typeof SagaQuery>): Promise<z.infer<typeof ConsoleSaga>[]> {
    const unfinished = { status: { $in: ['RUNNING', 'COMPENSATING'] as SagaStatus[] } };
    const ago = (seconds: number) => new Date(Date.now() - seconds * 1_000);
    // Each filter a condition of its own, so that two on one column (or on the state document) both hold.
    const where: FilterQuery<Saga>[] = [];
    if (query.status) where.push({ status: query.status });
    if (query.stuckForSeconds) where.push({ ...unfinished, updatedAt: { $lt: ago(query.stuckForSeconds) } });
    if (query.runningForSeconds) where.push({ ...unfinished, createdAt: { $lt: ago(query.runningForSeconds) } });
    if (query.setAside) where.push({ ...unfinished, state: { awaiting: { setAside: { $ne: null } } } });
    if (query.orderId) where.push({ businessKey: query.orderId });
    if (query.customerId) where.push({ state: { data: { customerId: query.customerId } } });
    if (query.createdFrom) where.push({ createdAt: { $gte: new Date(query.createdFrom) } });
    if (query.createdTo) where.push({ createdAt: { $lt: new Date(query.createdTo) } });
    const sagas = await this.orm.em.fork().find(Saga, where.length ? { $and: where } : {}, {
      orderBy: query.sort === '-createdAt' ? { createdAt: 'desc' } : { updatedAt: 'asc' },
      limit: query.limit,
    });
    return sagas.map((saga) => ({
      ...toOrderView(saga),
      correlationId: saga.correlationId,
      /** The order's trace, when tracing was on as it started (the dashboard links it to TRACING_UI_URL). */
      traceId: traceIdOf(saga.traceContext) ?? null,
      awaiting: saga.state.awaiting ?? null,
    }));
  }

  @Post('sagas/:id/retry')
  retry(@Param('id', new ZodPipe(Id)) id: string, @Body(new ZodPipe(NoteBody.partial())) body: { reason?: string }, @Caller() caller: Principal) {
    return this.operate(id, 'retry', body.reason ?? 'retried from the console', caller);
  }

  @Post('sagas/:id/compensate')
  compensate(@Param('id', new ZodPipe(Id)) id: string, @Body(new ZodPipe(NoteBody)) body: z.infer<typeof NoteBody>, @Caller() caller: Principal) {
    return this.operate(id, 'compensate', body.reason, caller);
  }

  private async operate(id: string, action: 'retry' | 'compensate', note: string, caller: Principal): Promise<OrderView> {
    try {
      return toOrderView(await this.runtime.engine.operate(id, action, note, caller.id));
    } catch (error) {
      if (error instanceof SagaNotFoundError) throw new NotFoundException(error.message);
      if (error instanceof NotAllowedError) throw new ConflictException(error.message);
      throw error;
    }
  }

  private async sagasById(ids: (string | null)[]): Promise<Map<string, Saga>> {
    const wanted = [...new Set(ids.filter(isId))];
    if (wanted.length === 0) return new Map();
    const sagas = await this.orm.em.fork().find(Saga, { id: { $in: wanted } });
    return new Map(sagas.map((saga) => [saga.id, saga]));
  }
}
