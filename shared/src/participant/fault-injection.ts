import { FaultSpec, HEADERS, type Envelope } from '../contracts/index.js';

/** The fault this command carries for its participant, if fault injection is enabled. */
export function injectedFault(command: Envelope, enabled: boolean): FaultSpec | null {
  const header = command.headers?.[HEADERS.faultPlan];
  if (!enabled || typeof header !== 'string') return null;
  const parsed = FaultSpec.safeParse(JSON.parse(header));
  return parsed.success ? parsed.data : null;
}

/** Which attempt (1-based, after broker retries) and which send (0-based, after timeouts) this delivery is. */
export const attemptOf = (command: Envelope) => Number(command.headers?.[HEADERS.attempt] ?? 1);
export const resendOf = (command: Envelope) => Number(command.headers?.[HEADERS.resend] ?? 0);

export class InjectedTransientError extends Error {}
