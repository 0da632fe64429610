import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { Clock } from '@agentmeter/domain';
import { QueryConfig } from '../config';
import { ApiKeysRepository } from './api-keys.repository';
import { UnauthenticatedError } from '@agentmeter/http';
import type { Principal } from './principal';

/** `amk_<16 hex key id>_<43 base64url chars = 256 random bits>` */
const KEY_FORMAT = /^amk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const TOUCH_EVERY_MS = 60_000;

export function isApiKey(token: string): boolean {
  return token.startsWith('amk_');
}

export function newApiKey(): { keyId: string; secret: string; token: string; hash: Buffer } {
  const keyId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { keyId, secret, token: `amk_${keyId}_${secret}`, hash: sha256(secret) };
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

interface Cached {
  principal: Principal;
  until: number;
  touchedAt: number;
}

/**
 * Verifies API keys: the key id finds the row, the SHA-256 of the secret must match it (compared in constant
 * time), and the key must be neither revoked nor expired. A verified key is trusted for
 * AUTH_API_KEY_CACHE_MS, so revocation takes effect within that delay.
 */
@Injectable()
export class ApiKeyVerifier {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly keys: ApiKeysRepository,
    private readonly clock: Clock,
    @Inject(QueryConfig) private readonly config: QueryConfig,
  ) {}

  async verify(token: string): Promise<Principal> {
    const match = KEY_FORMAT.exec(token);
    if (!match) throw new UnauthenticatedError('malformed API key');
    const [, keyId, secret] = match as unknown as [string, string, string];
    const now = this.clock.now().getTime();
    const hash = sha256(secret);
    const cacheKey = `${keyId}:${hash.toString('hex')}`;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.until > now) return cached.principal;

    const row = await this.keys.findForAuthentication(keyId);
    if (!row || !timingSafeEqual(row.secret_sha256, hash)) throw new UnauthenticatedError('unknown API key');
    if (row.revoked_at) throw new UnauthenticatedError('API key revoked');
    if (row.expires_at && row.expires_at.getTime() <= now) throw new UnauthenticatedError('API key expired');
    const principal: Principal = {
      subject: `api-key:${row.key_id}`,
      tenantId: row.tenant_id,
      roles: new Set([row.role]),
      credential: `key:${row.key_id}`,
    };
    const touchedAt = cached?.touchedAt ?? 0;
    if (now - touchedAt >= TOUCH_EVERY_MS) await this.keys.touch(row.key_id, new Date(now));
    if (this.cache.size > 10_000) this.cache.clear();
    const until = Math.min(now + this.config.AUTH_API_KEY_CACHE_MS, row.expires_at?.getTime() ?? Infinity);
    this.cache.set(cacheKey, { principal, until, touchedAt: now - touchedAt >= TOUCH_EVERY_MS ? now : touchedAt });
    return principal;
  }

  /** Forgets a key at once in this process (revocation through this replica). */
  forget(keyId: string): void {
    for (const key of this.cache.keys()) if (key.startsWith(`${keyId}:`)) this.cache.delete(key);
  }
}
