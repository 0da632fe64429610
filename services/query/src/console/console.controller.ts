import { Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Public } from '../auth/auth.guard';
import { KeepBodyFields } from '@agentmeter/http';
import { QueryConfig } from '../config';
import { openApiSchema, ValidBody } from '../http/validation';
import { SignInLinks } from './sign-in-links';

export const ConsoleSettings = z.object({
  oidc: z
    .object({ issuer: z.string(), client_id: z.string(), scope: z.string() })
    .nullable()
    .describe('OpenID Connect sign-in (Authorization Code + PKCE); null: sign in with an API key or token'),
  sign_in_links: z.boolean().describe('whether one-click sign-in links can be exchanged here'),
  session_minutes: z.number(),
});

export const SessionRequest = z.object({ code: z.string().min(1).max(4_000) }).strict();
export const SessionAnswer = z.object({ token: z.string(), expires_at: z.string() });

/** What the console needs before anyone signs in (docs/console.md): open routes, no data. */
@ApiTags('console')
@Controller('console')
@Public()
export class ConsoleController {
  constructor(
    @Inject(QueryConfig) private readonly config: QueryConfig,
    private readonly links: SignInLinks,
  ) {}

  @Get('settings')
  @ApiOperation({ summary: "The console's sign-in options" })
  @ApiOkResponse({ schema: openApiSchema(ConsoleSettings) })
  settings(): z.output<typeof ConsoleSettings> {
    const { CONSOLE_OIDC_ISSUER: issuer, CONSOLE_OIDC_CLIENT_ID: clientId } = this.config;
    return {
      oidc: issuer && clientId ? { issuer, client_id: clientId, scope: this.config.CONSOLE_OIDC_SCOPE } : null,
      sign_in_links: this.links.enabled,
      session_minutes: this.config.CONSOLE_SESSION_MINUTES,
    };
  }

  @Post('sessions')
  @HttpCode(201)
  // The code is a credential this route verifies and never stores: redacting it (it looks like a JWT) would
  // refuse every link.
  @KeepBodyFields('code')
  @ApiOperation({ summary: 'Exchange a one-click sign-in link code (single use) for a session token' })
  @ApiOkResponse({ schema: openApiSchema(SessionAnswer) })
  session(@ValidBody(SessionRequest) body: z.output<typeof SessionRequest>): Promise<z.output<typeof SessionAnswer>> {
    return this.links.exchange(body.code);
  }
}
