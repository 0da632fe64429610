import { Inject, Injectable } from '@nestjs/common';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { UnauthenticatedError } from '@agentmeter/http';
import { QueryConfig } from '../config';
import { Claims, type Principal } from './principal';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * Verifies bearer JWTs and turns their claims into a Principal. HS256 tokens are checked against
 * AUTH_JWT_SECRET; asymmetric ones against the keys of AUTH_JWKS_URL (fetched and cached by jose, refetched
 * when a token names an unknown key id). Issuer, audience and expiry are always checked.
 */
@Injectable()
export class JwtVerifier {
  private readonly secret: Uint8Array | null;
  private readonly jwks: JWTVerifyGetKey | null;

  constructor(@Inject(QueryConfig) private readonly config: QueryConfig) {
    this.secret = config.AUTH_JWT_SECRET ? new TextEncoder().encode(config.AUTH_JWT_SECRET) : null;
    this.jwks = config.AUTH_JWKS_URL ? createRemoteJWKSet(new URL(config.AUTH_JWKS_URL)) : null;
  }

  async verify(token: string): Promise<Principal> {
    let payload: unknown;
    try {
      const { alg } = decodeProtectedHeader(token);
      const options = { issuer: this.config.AUTH_JWT_ISSUER, audience: this.config.AUTH_JWT_AUDIENCE };
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
