import { Injectable } from '@nestjs/common';
import { Clock, type FieldClass, hiddenClasses, seesClass } from '@agentmeter/domain';
import type { Principal } from '../auth/principal';
import { TenantsRepository } from './tenants.repository';

/** Property-level rules of one answer (docs/security.md "Field policy"), from libs/domain FIELD_POLICY. */
export interface View {
  /** trace ids and Grafana/Tempo links (OP and Admin). */
  traces: boolean;
  /** raw token counts (everyone but an Owner of a tenant whose owner_sees_tokens is off). */
  tokens: boolean;
}

const CACHE_MS = 10_000;

/** Decides the View of a principal reading a tenant's data; tenant settings are cached for 10 s. */
@Injectable()
export class ViewPolicy {
  private readonly cache = new Map<string, { ownerSeesTokens: boolean; until: number }>();

  constructor(
    private readonly tenants: TenantsRepository,
    private readonly clock: Clock,
  ) {}

  async viewOf(principal: Principal, tenantId: string): Promise<View> {
    const traces = seesClass(principal.roles, 'traces');
    // Only a principal whose sole token-relevant role is Owner depends on the setting.
    if (seesClass(principal.roles, 'tokens', false)) return { traces, tokens: true };
    return { traces, tokens: await this.ownerSeesTokens(tenantId) };
  }

  /**
   * The field classes hidden from a principal in every answer (the query API removes them from JSON, CSV and
   * streams alike). Token visibility can depend only on the principal's own tenant: a principal that reads
   * other tenants (Admin) sees tokens whatever their setting.
   */
  async hiddenFor(principal: Principal): Promise<ReadonlySet<FieldClass>> {
    if (seesClass(principal.roles, 'tokens', false)) return hiddenClasses(principal.roles);
    return hiddenClasses(principal.roles, await this.ownerSeesTokens(principal.tenantId));
  }

  private async ownerSeesTokens(tenantId: string): Promise<boolean> {
    const now = this.clock.now().getTime();
    const cached = this.cache.get(tenantId);
    if (cached && cached.until > now) return cached.ownerSeesTokens;
    const settings = await this.tenants.settings(tenantId);
    const ownerSeesTokens = settings?.owner_sees_tokens ?? true;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenantId, { ownerSeesTokens, until: now + CACHE_MS });
    return ownerSeesTokens;
  }

  /** Drops a cached setting after it changed through this replica. */
  forget(tenantId: string): void {
    this.cache.delete(tenantId);
  }
}
