import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type {
  AuditedRequest,
  ControlCommand,
  LadderRequest,
  PutCapsRequest,
  RaiseRequest,
} from '@agentmeter/contracts';
import {
  type CapName,
  type CapPolicy,
  Clock,
  formatUsd,
  isTimeZone,
  ladderProblems,
  type Limit,
  overrideActive,
  type OverrideTarget,
  parseUsd,
} from '@agentmeter/domain';
import { LimitsService } from '../caps/limits.service';
import { CountersStore } from '../counters/counters.store';
import { CountersTransaction } from '../settlement/counters-transaction';
import { formatCapValue } from '../crossings/crossings.service';
import { CostCapDatabase, type Tx } from '../db/database';
import { ConflictError, InvalidRequestError, NotFoundError } from '@agentmeter/http';
import { OutboxPublisher } from '../outbox/outbox.publisher';
import { UnprocessableError } from '../http/errors';
import { OutboxRepository } from '../outbox/outbox.repository';
import { PricingService } from '../pricing/pricing.service';
import { SettingsCache } from '../settings/settings.cache';
import { SettingsRepository } from '../settings/settings.repository';
import { LedgerRepository } from '../ledger/ledger.repository';
import { TimersQueue } from '../queues/timers.queue';
import { type AuditRow, OverridesRepository, POLICY_COLUMNS, type PolicyValues } from './overrides.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const TARGET_CAPS: Record<OverrideTarget, CapName> = {
  tenant_daily_cost: 'cost',
  run_tokens: 'tokens',
  run_wall_time: 'wall_time',
  run_cost: 'cost',
  run_external: 'external',
};

/**
 * Overrides with audit (docs/cost-cap.md "HTTP API"): permanent caps, temporary raises (72 h by default,
 * expiring by themselves), pause and unpause, the model ladder, unfreezing a playbook's Publisher. Each
 * needs an actor and a reason and writes a cap_audit row (who, what, old, new, why, when, expiry) in the
 * transaction of the change. After the commit every replica is told (SettingsCache.changed): the change
 * is in force everywhere within a second. The query API's role checks will guard these routes; until
 * then the shared service token does.
 */
@Injectable()
export class OverridesService {
  constructor(
    private readonly repository: OverridesRepository,
    private readonly settings: SettingsRepository,
    private readonly db: CostCapDatabase,
    private readonly cache: SettingsCache,
    private readonly limits: LimitsService,
    private readonly counters: CountersStore,
    private readonly ledger: LedgerRepository,
    private readonly outbox: OutboxRepository,
    private readonly publisher: OutboxPublisher,
    private readonly timers: TimersQueue,
    private readonly step: CountersTransaction,
    private readonly pricing: PricingService,
    private readonly clock: Clock,
  ) {}

  async state(tenantId: string) {
    const now = this.clock.now();
    const settings = await this.settings.loadTenant(tenantId, now);
    const context = await this.limits.context(tenantId, '', '', now, now);
    const { counters } = await this.counters.read(tenantId, null, context.day);
    const daily = context.limits.tenantDailyCost;
    const spent = counters.tenant_cost.committed;
    const reserved = counters.tenant_cost.reserved;
    return {
      tenant_id: tenantId,
      time_zone: settings.timeZone,
      day: context.day,
      resets_at: context.resetsAt.toISOString(),
      paused: settings.pause
        ? {
            paused_at: settings.pause.pausedAt.toISOString(),
            paused_by: settings.pause.pausedBy,
            reason: settings.pause.reason,
          }
        : null,
      daily: {
        limit: daily.value === null ? null : formatUsd(daily.value),
        source: daily.source,
        spent: formatUsd(spent),
        reserved: formatUsd(reserved),
        remaining:
          daily.value === null ? null : formatUsd(daily.value > spent + reserved ? daily.value - spent - reserved : 0n),
        blocked: daily.value !== null && spent >= daily.value,
        override: limitOverride('cost', daily),
      },
      policy: policyWire(settings.tenant),
      projects: Object.fromEntries([...settings.projects].map(([project, policy]) => [project, policyWire(policy)])),
      raises: settings.overrides
        .filter((o) => overrideActive(o, now))
        .map((o) => ({
          override_id: o.id,
          cap: o.target,
          run_id: o.runId,
          limit: formatCapValue(TARGET_CAPS[o.target], o.value),
          created_at: o.createdAt.toISOString(),
          expires_at: o.expiresAt.toISOString(),
          actor: o.actor,
          reason: o.reason,
        })),
      model_ladder: [...settings.ladder].map(([model, cheaper]) => ({ model, cheaper_model: cheaper })),
    };
  }

  async putCaps(tenantId: string, request: PutCapsRequest) {
    const projectId = request.project_id ?? '';
    if (projectId && request.daily_cap_usd !== undefined) {
      throw new InvalidRequestError('daily_cap_usd is per tenant: leave project_id out to set it');
    }
    if (request.time_zone !== undefined && !isTimeZone(request.time_zone)) {
      throw new InvalidRequestError(`time_zone: not an IANA time zone: "${request.time_zone}"`);
    }
    const now = this.clock.now();
    const changes: Partial<PolicyValues> = {};
    const usd = (value: string | null | undefined) =>
      value === undefined ? undefined : value === null ? null : parseUsd(value).toString();
    const int = (value: number | null | undefined) =>
      value === undefined ? undefined : value === null ? null : String(value);
    changes.daily_cap_micros = usd(request.daily_cap_usd);
    changes.run_max_tokens = int(request.run.max_tokens);
    changes.run_max_wall_time_s = int(request.run.max_wall_time_s);
    changes.run_max_cost_micros = usd(request.run.max_cost_usd);
    changes.run_max_external_micros = usd(request.run.max_external_usd);
    await this.db.transaction(async (tx) => {
      const touched = POLICY_COLUMNS.some((column) => changes[column] !== undefined);
      if (touched) {
        const old = await this.repository.lockPolicy(tx, tenantId, projectId);
        const next = Object.fromEntries(
          POLICY_COLUMNS.map((column) => [
            column,
            changes[column] === undefined ? (old?.[column] ?? null) : changes[column],
          ]),
        ) as unknown as PolicyValues;
        await this.repository.savePolicy(tx, tenantId, projectId, next, request.actor, now);
        await this.repository.audit(tx, {
          tenantId,
          actor: request.actor,
          action: 'set_caps',
          target: projectId ? `project:${projectId}` : 'tenant',
          old,
          new: next,
          reason: request.reason,
          at: now,
        });
      }
      if (request.time_zone !== undefined) {
        const old = await this.repository.setTimeZone(tx, tenantId, request.time_zone);
        await this.repository.audit(tx, {
          tenantId,
          actor: request.actor,
          action: 'set_time_zone',
          target: 'tenant',
          old,
          new: request.time_zone,
          reason: request.reason,
          at: now,
        });
      }
    });
    await this.cache.changed(tenantId);
    return this.state(tenantId);
  }

  async raise(tenantId: string, request: RaiseRequest) {
    const now = this.clock.now();
    const cap = TARGET_CAPS[request.cap];
    if (request.cap === 'tenant_daily_cost' && request.run_id) {
      throw new InvalidRequestError('run_id: the daily cap is per tenant');
    }
    if ((cap === 'tokens' || cap === 'wall_time') && !/^\d+$/.test(request.limit)) {
      throw new InvalidRequestError(`limit: ${cap} is a whole number`);
    }
    const value = cap === 'cost' || cap === 'external' ? parseUsd(request.limit) : BigInt(request.limit);
    const run = request.run_id ? await this.settings.findRun(tenantId, request.run_id) : null;
    const context = await this.limits.context(
      tenantId,
      run?.projectId ?? '',
      request.run_id ?? '',
      now,
      now,
      run?.caps ?? null,
    );
    const current = limitOf(context.limits, request.cap);
    if (current.value === null) throw new ConflictError(`there is no ${request.cap} cap to raise`);
    if (value <= current.value) {
      throw new InvalidRequestError(
        `limit: a raise must be above the limit in force (${formatCapValue(cap, current.value)})`,
      );
    }
    const id = randomUUID();
    const expiresAt = new Date(now.getTime() + Math.round(request.duration_hours * 3_600_000));
    await this.db.transaction(async (tx) => {
      await this.repository.insertOverride(tx, {
        id,
        tenantId,
        target: request.cap,
        runId: request.run_id ?? null,
        value,
        actor: request.actor,
        reason: request.reason,
        createdAt: now,
        expiresAt,
      });
      const auditId = await this.repository.audit(tx, {
        tenantId,
        actor: request.actor,
        action: 'raise',
        target: request.run_id ? `${request.cap}:run:${request.run_id}` : request.cap,
        old: formatCapValue(cap, current.value!),
        new: formatCapValue(cap, value),
        reason: request.reason,
        at: now,
        expiresAt,
      });
      if (
        request.cap === 'tenant_daily_cost' &&
        (await this.repository.unblockDay(tx, tenantId, context.day, value, now))
      ) {
        await this.command(tx, auditId, { type: 'unblock_tenant', tenant_id: tenantId, cause: 'raise' }, request, now);
      }
    });
    if (request.cap === 'run_wall_time' && request.run_id && run?.stoppedReason === 'wall_time') {
      await this.step.run(async (tx) => {
        if (await this.ledger.clearStop(tx, tenantId, request.run_id!, now)) {
          await this.counters.setStop(tenantId, request.run_id!, null);
        }
        return { value: undefined };
      });
      if (run.startedAt) await this.timers.scheduleWallTime(tenantId, request.run_id, run.startedAt, value);
    }
    await this.timers.scheduleOverrideExpiry(id, expiresAt);
    await this.cache.changed(tenantId);
    this.cache.forgetRun(tenantId, request.run_id ?? '');
    this.publisher.kick();
    return {
      override_id: id,
      tenant_id: tenantId,
      cap: request.cap,
      run_id: request.run_id ?? null,
      previous_limit: formatCapValue(cap, current.value),
      limit: formatCapValue(cap, value),
      created_at: now.toISOString(),
      expires_at: expiresAt.toISOString(),
      actor: request.actor,
      reason: request.reason,
    };
  }

  async revoke(overrideId: string, request: AuditedRequest) {
    if (!UUID.test(overrideId)) throw new NotFoundError(`no raise ${overrideId} in force`);
    const now = this.clock.now();
    const row = await this.db.transaction(async (tx) => {
      const row = await this.repository.revokeOverride(tx, overrideId, request.actor, now);
      if (!row) return null;
      await this.repository.audit(tx, {
        tenantId: row.tenant_id,
        actor: request.actor,
        action: 'raise_revoked',
        target: row.run_id ? `${row.target}:run:${row.run_id}` : row.target,
        old: formatCapValue(TARGET_CAPS[row.target], BigInt(row.value)),
        new: null,
        reason: request.reason,
        at: now,
        expiresAt: row.expires_at,
      });
      return row;
    });
    if (!row) throw new NotFoundError(`no raise ${overrideId} in force`);
    await this.cache.changed(row.tenant_id);
    return { override_id: overrideId, revoked_at: now.toISOString() };
  }

  /** The expiry timer of a raise: records it in the audit (enforcement already stopped at expires_at). */
  async recordExpiry(overrideId: string): Promise<{ status: 'done' } | { status: 'later'; at: Date }> {
    const now = this.clock.now();
    const override = await this.repository.findOverride(overrideId);
    if (!override || override.revoked_at || override.expiry_recorded_at) return { status: 'done' };
    if (override.expires_at > now) return { status: 'later', at: override.expires_at };
    const row = await this.db.transaction(async (tx) => {
      const row = await this.repository.recordExpiry(tx, overrideId, now);
      if (!row) return null;
      await this.repository.audit(tx, {
        tenantId: row.tenant_id,
        actor: 'cost-cap',
        action: 'raise_expired',
        target: row.run_id ? `${row.target}:run:${row.run_id}` : row.target,
        old: formatCapValue(TARGET_CAPS[row.target], BigInt(row.value)),
        new: null,
        reason: 'temporary raise expired',
        at: now,
        expiresAt: row.expires_at,
      });
      return row;
    });
    if (row) await this.cache.changed(row.tenant_id);
    return { status: 'done' };
  }

  async pause(tenantId: string, request: AuditedRequest) {
    const now = this.clock.now();
    const changed = await this.db.transaction(async (tx) => {
      if (!(await this.repository.pause(tx, tenantId, request.actor, request.reason, now))) return false;
      const auditId = await this.repository.audit(tx, {
        tenantId,
        actor: request.actor,
        action: 'pause',
        target: 'tenant',
        old: { paused: false },
        new: { paused: true },
        reason: request.reason,
        at: now,
      });
      await this.command(tx, auditId, { type: 'block_tenant', tenant_id: tenantId, cause: 'paused' }, request, now);
      return true;
    });
    await this.cache.changed(tenantId);
    this.publisher.kick();
    return { tenant_id: tenantId, paused: true, changed };
  }

  async unpause(tenantId: string, request: AuditedRequest) {
    const now = this.clock.now();
    const changed = await this.db.transaction(async (tx) => {
      const old = await this.repository.unpause(tx, tenantId);
      if (!old) return false;
      const auditId = await this.repository.audit(tx, {
        tenantId,
        actor: request.actor,
        action: 'unpause',
        target: 'tenant',
        old: { paused: true, paused_by: old.paused_by, paused_at: old.paused_at, reason: old.reason },
        new: { paused: false },
        reason: request.reason,
        at: now,
      });
      await this.command(tx, auditId, { type: 'unblock_tenant', tenant_id: tenantId, cause: 'unpaused' }, request, now);
      return true;
    });
    await this.cache.changed(tenantId);
    this.publisher.kick();
    return { tenant_id: tenantId, paused: false, changed };
  }

  async setLadder(tenantId: string, request: LadderRequest) {
    const now = this.clock.now();
    // Every step must go down in price: a "downgrade" to a dearer model, or a loop, would spend more on retries.
    const problems = ladderProblems(request.steps, (model) => this.pricing.referencePrice(tenantId, model, now));
    const structural = problems.filter((problem) => problem.kind === 'structure');
    if (structural.length > 0) throw new InvalidRequestError(structural.map((p) => p.message).join('; '));
    if (problems.length > 0) throw new UnprocessableError(problems.map((p) => p.message).join('; '));
    await this.db.transaction(async (tx) => {
      const old = await this.repository.replaceLadder(tx, tenantId, request.steps);
      await this.repository.audit(tx, {
        tenantId,
        actor: request.actor,
        action: 'set_model_ladder',
        target: 'tenant',
        old,
        new: request.steps,
        reason: request.reason,
        at: now,
      });
    });
    await this.cache.changed(tenantId);
    return { tenant_id: tenantId, model_ladder: request.steps };
  }

  async unfreeze(playbook: string, request: AuditedRequest) {
    const now = this.clock.now();
    const changed = await this.db.transaction(async (tx) => {
      const old = await this.repository.unfreeze(tx, playbook);
      if (!old) return false;
      const auditId = await this.repository.audit(tx, {
        tenantId: null,
        actor: request.actor,
        action: 'unfreeze_publisher',
        target: `playbook:${playbook}`,
        old: { frozen: true, frozen_at: old.frozen_at, frozen_by: old.frozen_by, reason: old.reason },
        new: { frozen: false },
        reason: request.reason,
        at: now,
      });
      await this.command(tx, auditId, { type: 'unfreeze_publisher', playbook }, request, now);
      return true;
    });
    await this.cache.changed('playbooks');
    this.publisher.kick();
    return { playbook, frozen: false, changed };
  }

  async audit(tenantId: string, limit: number): Promise<AuditRow[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidRequestError('limit: a whole number from 1 to 1000');
    }
    return this.repository.listAudit(tenantId, limit);
  }

  /** A command caused by an operator's change, with an id derived from its audit row. */
  private async command(
    tx: Tx,
    auditId: string,
    command: DistributiveOmit<ControlCommand, 'version' | 'command_id' | 'issued_at' | 'issued_by' | 'reason'>,
    request: AuditedRequest,
    now: Date,
  ): Promise<void> {
    const full = {
      version: 1,
      command_id: `audit-${auditId}`,
      issued_at: now.toISOString(),
      issued_by: request.actor,
      reason: request.reason,
      ...command,
    } as ControlCommand;
    const key = 'playbook' in full ? `playbook:${full.playbook}` : full.tenant_id;
    await this.outbox.enqueue(tx, [{ messageId: `control:${full.command_id}`, topic: 'control', key, payload: full }]);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function limitOf(limits: Awaited<ReturnType<LimitsService['context']>>['limits'], target: OverrideTarget): Limit {
  switch (target) {
    case 'tenant_daily_cost':
      return limits.tenantDailyCost;
    case 'run_tokens':
      return limits.runTokens;
    case 'run_wall_time':
      return limits.runWallTimeS;
    case 'run_cost':
      return limits.runCost;
    case 'run_external':
      return limits.runExternal;
  }
}

function limitOverride(cap: CapName, limit: Limit) {
  return limit.override
    ? {
        override_id: limit.override.id,
        limit: formatCapValue(cap, limit.override.value),
        expires_at: limit.override.expiresAt.toISOString(),
        actor: limit.override.actor,
        reason: limit.override.reason,
      }
    : null;
}

function policyWire(policy: CapPolicy | null) {
  if (!policy) return null;
  const usd = (value: bigint | null) => (value === null ? null : formatUsd(value));
  const n = (value: bigint | null) => (value === null ? null : Number(value));
  return {
    daily_cap_usd: usd(policy.dailyCostMicros),
    run: {
      max_tokens: n(policy.run.tokens),
      max_wall_time_s: n(policy.run.wallTimeS),
      max_cost_usd: usd(policy.run.costMicros),
      max_external_usd: usd(policy.run.externalMicros),
    },
  };
}
