import { z } from 'zod';
import { type CommandContract, Reason, Text } from './define.js';

/** What a participant answers to a command: the step either did its work or refused it for a business reason. */
export const FailureReply = z.strictObject({ code: Text(100), reason: Reason(1000) });
export type FailureReply = z.infer<typeof FailureReply>;

export type StepReply<R = unknown> = { outcome: 'succeeded'; result: R } | { outcome: 'failed'; failure: FailureReply };

export const replyType = (command: Pick<CommandContract, 'type'>, outcome: StepReply['outcome']) => `${command.type}.${outcome}`;

/** Splits `inventory.reserve.succeeded` into the command type and outcome; undefined for anything else. */
export function parseReplyType(type: string): { commandType: string; outcome: StepReply['outcome'] } | undefined {
  const match = /^(.+)\.(succeeded|failed)$/.exec(type);
  return match ? { commandType: match[1], outcome: match[2] as StepReply['outcome'] } : undefined;
}

/** What a participant handler returns for command C. */
export type ReplyOf<C extends { result: z.ZodType }> = StepReply<z.infer<C['result']>>;

export const succeeded = <R>(result: R): StepReply<R> => ({ outcome: 'succeeded', result });
/** A business refusal (out of stock, card declined): the saga compensates; nothing is retried. */
export const failed = (code: string, reason: string): StepReply<never> => ({ outcome: 'failed', failure: { code, reason } });
