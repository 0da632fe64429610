import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import {
  ALERT_RULE_IDS,
  AlertRules,
  AlertThresholdSchemas,
  isAlertRuleId,
  type AlertRuleId,
  type AlertThresholds,
} from '@agentmeter/contracts';
import { AuditRepository } from '../audit/audit.repository';
import { InvalidRequestError, NotFoundError } from '@agentmeter/http';
import { ThresholdsRepository } from './thresholds.repository';

/** Rules raised by other services (agent.alerts.v1, "service.*") have only the lifecycle parameters. */
const ServiceRuleThresholds = AlertThresholdSchemas[AlertRules.Alertmanager];

export type Params = Record<string, unknown> & { repeat_interval_minutes: number | null; notify_resolved: boolean };

/** The parameters of one rule for every tenant: the defaults with each tenant's override merged over them. */
export class RuleThresholds<R extends AlertRuleId = AlertRuleId> {
  private readonly cache = new Map<string, AlertThresholds<R>>();

  constructor(
    private readonly schema: z.ZodObject,
    private readonly overrides: Map<string, Record<string, unknown>>,
  ) {}

  readonly of = (tenantId: string): AlertThresholds<R> => {
    let params = this.cache.get(tenantId);
    if (!params) {
      // A stored override that no longer parses (a rule's schema tightened) falls back to the defaults.
      const parsed = this.schema.safeParse(this.overrides.get(tenantId) ?? {});
      params = (parsed.success ? parsed.data : this.schema.parse({})) as AlertThresholds<R>;
      this.cache.set(tenantId, params);
    }
    return params;
  };

  /** Tenants with an override, and their merged parameters. */
  overridden(): Array<[string, AlertThresholds<R>]> {
    return [...this.overrides.keys()].map((tenant) => [tenant, this.of(tenant)]);
  }

  defaults(): AlertThresholds<R> {
    return this.schema.parse({}) as AlertThresholds<R>;
  }
}

/** Thresholds: defaults in the contract schemas, per-tenant overrides in the database, audited changes. */
@Injectable()
export class ThresholdsService {
  constructor(
    private readonly repository: ThresholdsRepository,
    private readonly audit: AuditRepository,
  ) {}

  static schemaOf(rule: string): z.ZodObject {
    if (isAlertRuleId(rule)) return AlertThresholdSchemas[rule];
    if (rule.startsWith(AlertRules.ServicePrefix)) return ServiceRuleThresholds;
    throw new NotFoundError(`unknown rule ${rule}`);
  }

  async forRule<R extends AlertRuleId>(rule: R): Promise<RuleThresholds<R>> {
    return new RuleThresholds<R>(ThresholdsService.schemaOf(rule), await this.repository.overridesOfAllTenants(rule));
  }

  async paramsFor(rule: string, tenantId: string): Promise<Params> {
    const schema = ThresholdsService.schemaOf(rule);
    const parsed = schema.safeParse((await this.repository.override(tenantId, rule)) ?? {});
    return (parsed.success ? parsed.data : schema.parse({})) as Params;
  }

  /** Every rule's parameters in force for a tenant, with the override (if any) that made them. */
  async effectiveOfTenant(tenantId: string): Promise<Array<{ rule: string; params: Params; override: unknown }>> {
    const overrides = await this.repository.overridesOfTenant(tenantId);
    return ALERT_RULE_IDS.map((rule) => {
      const schema = AlertThresholdSchemas[rule];
      const override = overrides.get(rule) ?? null;
      const parsed = schema.safeParse(override ?? {});
      return { rule, params: (parsed.success ? parsed.data : schema.parse({})) as Params, override };
    });
  }

  async set(tenantId: string, rule: string, params: Record<string, unknown>, actor: string, reason: string) {
    const schema = ThresholdsService.schemaOf(rule).strict();
    const checked = schema.partial().safeParse(params);
    if (!checked.success) {
      throw new InvalidRequestError(
        checked.error.issues.map((issue) => `params.${issue.path.join('.')}: ${issue.message}`).join('; '),
      );
    }
    const before = await this.repository.override(tenantId, rule);
    await this.repository.transaction(async (tx) => {
      await this.repository.upsert(tx, tenantId, rule, checked.data, actor);
      await this.audit.record(
        [{ tenantId, actor, action: 'threshold.set', target: rule, reason, detail: { before, after: checked.data } }],
        tx,
      );
    });
    return this.paramsFor(rule, tenantId);
  }

  async clear(tenantId: string, rule: string, actor: string, reason: string): Promise<void> {
    ThresholdsService.schemaOf(rule);
    const before = await this.repository.override(tenantId, rule);
    await this.repository.transaction(async (tx) => {
      if (!(await this.repository.delete(tx, tenantId, rule))) {
        throw new NotFoundError(`tenant ${tenantId} has no override of ${rule}`);
      }
      await this.audit.record(
        [{ tenantId, actor, action: 'threshold.clear', target: rule, reason, detail: { before } }],
        tx,
      );
    });
  }
}
