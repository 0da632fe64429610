import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedis } from '@agentmeter/telemetry';
import { jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { ROLES } from '@agentmeter/domain';
import { UnauthenticatedError } from '@agentmeter/http';
import { QueryConfig } from '../config';

/** What a one-click sign-in link's code carries (docs/console.md "Sign-in"). */
const LinkClaims = z.object({
  sub: z.string().min(1),
  tenant_id: z.string().min(1),
  roles: z.array(z.enum(ROLES)).min(1),
  jti: z.string().min(16),
  exp: z.number(),
});

const LINK_PURPOSE = 'agentmeter-console-link';

/** Remembers used link codes in Redis until they expire, so each opens one session at most. */
@Injectable()
export class UsedLinkCodes implements OnApplicationShutdown {
  private readonly redis: Redis;

  constructor(@Inject(QueryConfig) config: QueryConfig) {
    // A failed claim refuses the link (claim() rejects): errors are the caller's.
    this.redis = createRedis(config.REDIS_URL, {
      name: 'redis (sign-in links)',
      logger: null,
      lazyConnect: true,
      keyPrefix: `${config.REDIS_KEY_PREFIX}query:console-link:`,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      disconnectTimeout: 200,
    });
  }

  /** True the first time a code id is claimed, false ever after (until it expires anyway). */
  async claim(codeId: string, ttlSeconds: number): Promise<boolean> {
    const result = await this.redis.set(codeId, '1', 'EX', Math.max(1, ttlSeconds), 'NX');
    return result === 'OK';
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}

/**
 * One-click local sign-in: `make up` mints a short-lived code (signed with AUTH_JWT_SECRET, the audience
 * of links only) and prints a link carrying it in the URL fragment, which browsers never send to a server,
 * so no log sees it. The console posts the code once to POST /console/sessions and gets a session token
 * (a bearer JWT like any other, CONSOLE_SESSION_MINUTES long); a second use of the same code is refused.
 */
@Injectable()
export class SignInLinks {
  private readonly secret: Uint8Array | null;

  constructor(
    @Inject(QueryConfig) private readonly config: QueryConfig,
    private readonly used: UsedLinkCodes,
  ) {
    this.secret = config.AUTH_JWT_SECRET ? new TextEncoder().encode(config.AUTH_JWT_SECRET) : null;
  }

  get enabled(): boolean {
    return this.secret !== null;
  }

  /** Exchanges a link code for a session token; refuses a bad, expired or already used code alike. */
  async exchange(code: string): Promise<{ token: string; expires_at: string }> {
    if (!this.secret) throw new UnauthenticatedError('sign-in links are off (no AUTH_JWT_SECRET)');
    let claims: z.output<typeof LinkClaims>;
    try {
      const { payload } = await jwtVerify(code, this.secret, {
        algorithms: ['HS256'],
        issuer: this.config.AUTH_JWT_ISSUER,
        audience: LINK_PURPOSE,
      });
      claims = LinkClaims.parse(payload);
    } catch {
      throw new UnauthenticatedError('this sign-in link is invalid or has expired');
    }
    const ttl = claims.exp - Math.floor(Date.now() / 1000);
    if (!(await this.used.claim(claims.jti, ttl))) {
      throw new UnauthenticatedError('this sign-in link was already used');
    }
    const expiresAt = new Date(Date.now() + this.config.CONSOLE_SESSION_MINUTES * 60_000);
    const token = await new SignJWT({ tenant_id: claims.tenant_id, roles: claims.roles })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(claims.sub)
      .setIssuer(this.config.AUTH_JWT_ISSUER)
      .setAudience(this.config.AUTH_JWT_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.secret);
    return { token, expires_at: expiresAt.toISOString() };
  }
}

/** Mints a link code (tools and tests); the secret and issuer are the query service's. */
export async function mintLinkCode(options: {
  secret: string;
  issuer: string;
  subject: string;
  tenantId: string;
  roles: string[];
  ttlSeconds: number;
}): Promise<string> {
  const jti = Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString('base64url');
  return new SignJWT({ tenant_id: options.tenantId, roles: options.roles, jti })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(options.subject)
    .setIssuer(options.issuer)
    .setAudience(LINK_PURPOSE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds)
    .sign(new TextEncoder().encode(options.secret));
}
