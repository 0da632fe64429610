import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { IngestConfig } from '../config';

/** Which tenants a credential may report spans for: one tenant, or every tenant ("*", for collectors). */
export type OtlpScope = { tenant: string } | { tenant: '*' };

/**
 * Bearer tokens for the OTLP receiver, from OTLP_TOKENS ("tenant=token,..."). Without a valid token the
 * receiver answers 401; spans of another tenant than the token's are rejected (partial success).
 * Tokens are kept only as SHA-256 digests and compared in constant time.
 */
@Injectable()
export class OtlpAuth {
  private readonly tokens: Array<{ tenant: string; digest: Buffer }>;

  constructor(@Inject(IngestConfig) config: IngestConfig) {
    this.tokens = config.OTLP_TOKENS.map(({ tenant, token }) => ({ tenant, digest: digest(token) }));
  }

  scopeOf(authorization: string | undefined): OtlpScope {
    const match = authorization ? /^Bearer\s+(\S+)$/i.exec(authorization) : null;
    if (!match) throw new UnauthorizedException('missing bearer token');
    const presented = digest(match[1]!);
    const found = this.tokens.find((t) => timingSafeEqual(t.digest, presented));
    if (!found) throw new UnauthorizedException('unknown token');
    return { tenant: found.tenant };
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
