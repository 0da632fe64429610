import { Inject, Injectable } from '@nestjs/common';
import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { Clock } from '@agentmeter/domain';
import { UnauthenticatedError } from '@agentmeter/http';
import { QueryConfig } from '../config';
import { Claims, type Principal } from './principal';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** Why a verified token's times are not acceptable (docs/security.md "JWT rules"), or null. */
export function lifetimeProblem(
  payload: JWTPayload,
  nowS: number,
  limits: { maxLifetimeS: number; skewS: number },
): string | null {
  const { exp, iat, nbf } = payload;
  if (typeof exp !== 'number') return 'exp is required';
  if (iat !== undefined && (typeof iat !== 'number' || iat > nowS + limits.skewS)) return 'iat is in the future';
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowS + limits.skewS)) return 'nbf is in the future';
  const issued = typeof iat === 'number' ? iat : nowS;
  if (exp - issued > limits.maxLifetimeS) return 'lifetime longer than AUTH_JWT_MAX_LIFETIME_S';
  return null;
}

/**
 * Verifies bearer JWTs and turns their claims into a Principal. HS256 tokens are checked against
 * AUTH_JWT_SECRET; asymmetric ones against the keys of AUTH_JWKS_URL (fetched and cached by jose, refetched
 * when a token names an unknown key id). Issuer, audience and expiry are always checked: `exp` is required,
 * a lifetime above AUTH_JWT_MAX_LIFETIME_S is refused, and so are `iat`/`nbf` in the future beyond
 * AUTH_JWT_CLOCK_SKEW_S. Every refusal is the same 401 (the reason goes to no one: see auth.guard.ts).
 */
@Injectable()
export class JwtVerifier {
  private readonly secret: Uint8Array | null;
  private readonly jwks: JWTVerifyGetKey | null;

  constructor(
    @Inject(QueryConfig) private readonly config: QueryConfig,
    private readonly clock: Clock,
  ) {
    this.secret = config.AUTH_JWT_SECRET ? new TextEncoder().encode(config.AUTH_JWT_SECRET) : null;
    this.jwks = config.AUTH_JWKS_URL ? createRemoteJWKSet(new URL(config.AUTH_JWKS_URL)) : null;
  }

  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    const now = this.clock.now();
    try {
      const { alg } = decodeProtectedHeader(token);
      const options = {
        issuer: this.config.AUTH_JWT_ISSUER,
        audience: this.config.AUTH_JWT_AUDIENCE,
        requiredClaims: ['exp'],
        clockTolerance: this.config.AUTH_JWT_CLOCK_SKEW_S,
        currentDate: now,
      };
      if (alg === 'HS256' && this.secret) {
        ({ payload } = await jwtVerify(token, this.secret, { ...options, algorithms: ['HS256'] }));
      } else if (alg && ASYMMETRIC.includes(alg) && this.jwks) {
        ({ payload } = await jwtVerify(token, this.jwks, { ...options, algorithms: ASYMMETRIC }));
      } else {
        throw new Error(`algorithm ${alg ?? 'none'} is not accepted`);
      }
    } catch (error) {
      throw new UnauthenticatedError(`invalid token: ${(error as Error).message}`);
    }
    const problem = lifetimeProblem(payload, Math.floor(now.getTime() / 1000), {
      maxLifetimeS: this.config.AUTH_JWT_MAX_LIFETIME_S,
      skewS: this.config.AUTH_JWT_CLOCK_SKEW_S,
    });
    if (problem) throw new UnauthenticatedError(`invalid token: ${problem}`);
    const claims = Claims.safeParse(payload);
    if (!claims.success) throw new UnauthenticatedError('token lacks sub, tenant_id or known roles');
    return {
      subject: claims.data.sub,
      tenantId: claims.data.tenant_id,
      roles: new Set(claims.data.roles),
      credential: `jwt:${claims.data.sub}`,
    };
  }
}
