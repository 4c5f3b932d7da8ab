import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';

/** `client` places and reads orders; `operator` may do that too, and use the console. */
export type Role = 'client' | 'operator';

/** Who is asking: from an API key (a trusted backend) or a JWT (a person or a service of the issuer's). */
export interface Principal {
  role: Role;
  /** For the audit trail: the JWT's subject, or `api-key:<role>:<fingerprint>`. */
  id: string;
  /** Set when a client's JWT is bound to a customer (JWT_CUSTOMER_CLAIM): it acts for that customer only. */
  customerId?: string;
  /** When the credential stops being valid (a JWT's `exp`, ms since the epoch); API keys last while configured. */
  expiresAt?: number;
}

export const REQUIRED_ROLE = 'sagaflow:role';

/** A route only this role (or a higher one) may call; every other route needs `client`. */
export const RequireRole = (role: Role) => SetMetadata(REQUIRED_ROLE, role);

/** The authenticated caller of this request (set by the AuthGuard). */
export const Caller = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => context.switchToHttp().getRequest().principal);

/** Whether `principal` may act for `customerId`: unbound callers (API keys, operators) act for anyone. */
export const actsFor = (principal: Principal, customerId: string): boolean => principal.customerId === undefined || principal.customerId === customerId;
