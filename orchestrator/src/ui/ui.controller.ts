import { Body, Controller, Delete, ForbiddenException, Get, HttpCode, type MessageEvent, Post, Req, Res, Sse } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { Public } from '@sagaflow/shared';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { Authenticator } from '../auth/authenticator.js';
import { Caller, type Principal, RequireRole } from '../auth/principal.js';
import { requireSameOrigin, Sessions } from '../auth/session.js';
import { env } from '../config.js';
import { ZodPipe } from '../http/zod.pipe.js';
import { LiveUpdates } from './live-updates.js';

/** What the sign-in form posts: an API key or a JWT, as it would follow `Bearer `. */
export const SignInBody = z.strictObject({ token: z.string().min(1, 'must not be empty').max(8192) });
/** Who is signed in, and until when (null: while the API key stays configured). */
export const SessionView = z.strictObject({
  actor: z.string(),
  role: z.enum(['client', 'operator']),
  expiresAt: z.string().nullable(),
  /** Where a trace id links to: `{traceId}` stands for it; null when no tracing UI is configured. */
  tracingUiUrl: z.string().nullable(),
});

/**
 * The dashboard's own routes (its page and assets are static files under /ui): sign in with a key or token
 * (operators only) for a session cookie, who is signed in, sign out, and the live event stream.
 */
@RequireRole('operator')
@Controller('ui')
export class UiController {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly sessions: Sessions,
    private readonly live: LiveUpdates,
  ) {}

  @Public()
  @Post('session')
  @HttpCode(200)
  async signIn(@Body(new ZodPipe(SignInBody)) body: z.infer<typeof SignInBody>, @Req() request: Request, @Res({ passthrough: true }) response: Response) {
    requireSameOrigin(request);
    const principal = await this.authenticator.authenticate(`Bearer ${body.token}`);
    if (principal.role !== 'operator') throw new ForbiddenException('the dashboard is for operators: this key or token has the client role');
    const expiresAt = await this.sessions.start(principal, request, response);
    return this.whoIs({ ...principal, expiresAt });
  }

  @Get('session')
  session(@Caller() caller: Principal) {
    return this.whoIs(caller);
  }

  /** Public, so that a session that has already ended can still be signed out of. */
  @Public()
  @Delete('session')
  @HttpCode(204)
  signOut(@Req() request: Request, @Res({ passthrough: true }) response: Response): void {
    requireSameOrigin(request);
    this.sessions.end(request, response);
  }

  /** Server-sent events: `sagas` (which changed) and `dead-letters` (depths); the stream ends with the session. */
  @Sse('events')
  events(@Caller() caller: Principal): Observable<MessageEvent> {
    return this.live.watch(caller.expiresAt);
  }

  private whoIs(principal: Principal): z.infer<typeof SessionView> {
    return {
      actor: principal.id,
      role: principal.role,
      expiresAt: principal.expiresAt === undefined ? null : new Date(principal.expiresAt).toISOString(),
      tracingUiUrl: env.TRACING_UI_URL ?? null,
    };
  }
}
