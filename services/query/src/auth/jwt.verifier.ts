import { Inject, Injectable } from '@nestjs/common';
import { jwtVerify } from 'jose';
import { QueryConfig } from '../config';
import { Claims, type Principal } from './principal';

export class UnauthenticatedError extends Error {
  readonly code = 'UNAUTHENTICATED';
}

/** Verifies bearer JWTs (HS256, issuer and audience checked) and turns their claims into a Principal. */
@Injectable()
export class JwtVerifier {
  private readonly key: Uint8Array;

  constructor(@Inject(QueryConfig) private readonly config: QueryConfig) {
    this.key = new TextEncoder().encode(config.AUTH_JWT_SECRET);
  }

  async verify(token: string): Promise<Principal> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: this.config.AUTH_JWT_ISSUER,
        audience: this.config.AUTH_JWT_AUDIENCE,
      }));
    } catch (error) {
      throw new UnauthenticatedError(`invalid token: ${(error as Error).message}`);
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success) throw new UnauthenticatedError('token lacks sub, tenant_id or known roles');
    return { subject: claims.data.sub, tenantId: claims.data.tenant_id, roles: new Set(claims.data.roles) };
  }
}
