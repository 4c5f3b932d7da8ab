import { MikroORM } from '@mikro-orm/postgresql';
import { BadRequestException, Body, ConflictException, Controller, Get, NotFoundException, Param, Post, Query } from '@nestjs/common';
import { Id, isId, type SagaStatus, Text } from '@sagaflow/shared';
import { z } from 'zod';
import { Caller, type Principal, RequireRole } from '../auth/principal.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { SagaNotFoundError } from '../saga-engine/saga-engine.js';
import { SagaRuntime } from '../saga-engine/saga-runtime.js';
import { NotAllowedError } from '../saga-engine/saga-state.js';
import { Saga } from '../saga-engine/saga.entities.js';
import { toOrderView } from '../orders/order.view.js';
import { DEAD_LETTER_QUEUES, DeadLetters } from './dead-letters.js';

/** Dead letters are named by their message id as it came: any printable text, since malformed ones land there too. */
const MessageIds = z.array(Text(255)).min(1).max(1000);
const Replay = z.union([z.strictObject({ messageIds: MessageIds }), z.strictObject({ all: z.literal(true) })]);
const Discard = z.strictObject({ messageIds: MessageIds, reason: Text(500) });
const Note = z.strictObject({ reason: Text(500) });
/** Ten years: the longest a saga can sensibly have been stuck or running. */
const MAX_AGE_SECONDS = 10 * 365 * 24 * 3600;
const DeadLetterQueue = z.enum(DEAD_LETTER_QUEUES as [string, ...string[]]);
const DeadLetterQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** Where the page starts, as the last page's `nextCursor` gave it: `<queue>:<position>`. */
  cursor: z
    .string()
    .regex(/^[a-z.]{1,100}:\d{1,9}$/, 'must be a nextCursor as a page gave it')
    .transform((cursor) => ({ queue: cursor.slice(0, cursor.lastIndexOf(':')), position: Number(cursor.slice(cursor.lastIndexOf(':') + 1)) }))
    .refine((cursor) => DEAD_LETTER_QUEUES.includes(cursor.queue), 'names no dead-letter queue')
    .optional(),
  /** One .dlq only. */
  queue: DeadLetterQueue.optional(),
});
const SagaQuery = z.strictObject({
  status: z.enum(['RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'FAILED', 'COMPENSATION_FAILED']).optional(),
  /** Not finished, and no progress for this long. */
  stuckForSeconds: z.coerce.number().int().min(1).max(MAX_AGE_SECONDS).optional(),
  /** Not finished, and started this long ago. */
  runningForSeconds: z.coerce.number().int().min(1).max(MAX_AGE_SECONDS).optional(),
  /** Only sagas whose awaited command was set aside: it can never be published as it is. */
  setAside: z.stringbool().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

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
  async listDeadLetters(@Query(new ZodPipe(DeadLetterQuery)) query: z.infer<typeof DeadLetterQuery>) {
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
  async replay(@Body(new ZodPipe(Replay)) body: z.infer<typeof Replay>, @Caller() caller: Principal) {
    const result = await this.deadLetters.replay('all' in body ? 'all' : body.messageIds);
    for (const letter of result.replayed) {
      if (letter.sagaId) await this.runtime.engine.recordOperatorAction(letter.sagaId, 'replay', `dead letter ${letter.type} replayed to ${letter.originalQueue}`, caller.id, letter.messageId);
    }
    return result;
  }

  @Post('dead-letters/discard')
  async discard(@Body(new ZodPipe(Discard)) body: z.infer<typeof Discard>, @Caller() caller: Principal) {
    const result = await this.deadLetters.discard(body.messageIds);
    for (const letter of result.discarded) {
      if (letter.sagaId) await this.runtime.engine.recordOperatorAction(letter.sagaId, 'discard', `dead letter ${letter.type} discarded: ${body.reason}`, caller.id, letter.messageId);
    }
    return result;
  }

  @Get('sagas')
  async sagas(@Query(new ZodPipe(SagaQuery)) query: z.infer<typeof SagaQuery>) {
    const unfinished = { status: { $in: ['RUNNING', 'COMPENSATING'] as SagaStatus[] } };
    const now = Date.now();
    const sagas = await this.orm.em.fork().find(
      Saga,
      {
        ...(query.status ? { status: query.status } : {}),
        ...(query.stuckForSeconds ? { ...unfinished, updatedAt: { $lt: new Date(now - query.stuckForSeconds * 1_000) } } : {}),
        ...(query.runningForSeconds ? { ...unfinished, createdAt: { $lt: new Date(now - query.runningForSeconds * 1_000) } } : {}),
        ...(query.setAside ? { ...unfinished, state: { awaiting: { setAside: { $ne: null } } } } : {}),
      },
      { orderBy: { updatedAt: 'asc' }, limit: query.limit },
    );
    return sagas.map((saga) => ({ ...toOrderView(saga), awaiting: saga.state.awaiting ?? null }));
  }

  @Post('sagas/:id/retry')
  retry(@Param('id', new ZodPipe(Id)) id: string, @Body(new ZodPipe(Note.partial())) body: { reason?: string }, @Caller() caller: Principal) {
    return this.operate(id, 'retry', body.reason ?? 'retried from the console', caller);
  }

  @Post('sagas/:id/compensate')
  compensate(@Param('id', new ZodPipe(Id)) id: string, @Body(new ZodPipe(Note)) body: z.infer<typeof Note>, @Caller() caller: Principal) {
    return this.operate(id, 'compensate', body.reason, caller);
  }

  private async operate(id: string, action: 'retry' | 'compensate', note: string, caller: Principal) {
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
