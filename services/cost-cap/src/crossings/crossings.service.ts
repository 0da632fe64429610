import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { type AgentEventInput, type ControlCommand, type EventType, parseAgentEvent } from '@agentmeter/contracts';
import {
  type CapName,
  type CapOverride,
  type CapScope,
  type Counters,
  DIMENSION_CAPS,
  DIMENSIONS,
  type EffectiveLimits,
  formatUsd,
  limitOf,
  reachedThresholds,
  type Threshold,
} from '@agentmeter/domain';
import { DailyCapsRepository } from '../caps/daily-caps.repository';
import type { Tx } from '../db/database';
import { CostCapMetrics } from '../metrics/cost-cap.metrics';
import { OutboxRepository, type OutboxMessage } from '../outbox/outbox.repository';
import { CrossingsRepository } from './crossings.repository';

/** The source of the events cost-cap publishes. */
export const COST_CAP_SOURCE = 'agentmeter/cost-cap';
const MAX_REMEMBERED = 100_000;

/** Where spend happened: the run, its tenant-day, and the limits in force. */
export interface SpendContext {
  tenantId: string;
  projectId: string;
  runId: string;
  /** The phase and role of the spend, when it names them (cap_hit and cap_warning carry them). */
  phase?: string;
  role?: string;
  /** When the spend happened (the call's event time): the crossings it reaches are stamped with it. */
  at?: Date;
  day: string;
  resetsAt: Date;
  limits: EffectiveLimits;
}

export interface Crossing {
  id: string;
  tenantId: string;
  projectId: string;
  runId: string;
  phase?: string;
  role?: string;
  /** When the spend that reached it happened; null when found by a timer or a settlement (stamped when claimed). */
  at: Date | null;
  scope: CapScope;
  cap: CapName;
  threshold: Threshold;
  limit: bigint;
  observed: bigint;
  day: string | null;
  resetsAt: Date | null;
  override: CapOverride | null;
}

/**
 * Cap crossings (docs/cost-cap.md "Crossings, commands and alerts"): 80 % gives cap_warning, 100 % gives cap_hit and a
 * control command, each once per run or tenant-day and limit in force (a raise opens new crossings).
 * "Once" across replicas comes from the claim: a row in cap_crossings inserted with ON CONFLICT DO NOTHING
 * in the transaction that accounted the spend; only the inserting transaction enqueues the messages.
 * Detection is by state (committed >= threshold), not by transition, so a retried batch that finds its
 * spend already counted still claims what its first attempt could not.
 */
@Injectable()
export class CrossingsService {
  /** Crossings this replica saw committed: no need to try claiming them again. */
  private readonly known = new Set<string>();

  constructor(
    private readonly repository: CrossingsRepository,
    private readonly dailyCaps: DailyCapsRepository,
    private readonly outbox: OutboxRepository,
    private readonly metrics: CostCapMetrics,
  ) {}

  /** Thresholds the committed spend has reached, for every capped dimension. */
  detect(context: SpendContext, counters: Counters): Crossing[] {
    const crossings: Crossing[] = [];
    for (const dimension of DIMENSIONS) {
      const limit = limitOf(context.limits, dimension);
      const { scope, cap } = DIMENSION_CAPS[dimension];
      for (const threshold of reachedThresholds(counters[dimension].committed, limit.value)) {
        crossings.push(
          this.crossing(context, scope, cap, threshold, limit.value!, counters[dimension].committed, limit.override),
        );
      }
    }
    return crossings.filter((crossing) => !this.known.has(crossing.id));
  }

  wallTime(
    context: Omit<SpendContext, 'day' | 'resetsAt'>,
    threshold: Threshold,
    limitS: bigint,
    elapsedS: bigint,
  ): Crossing {
    const override = context.limits.runWallTimeS.override;
    return this.crossing(
      { ...context, day: '', resetsAt: new Date(0) },
      'run',
      'wall_time',
      threshold,
      limitS,
      elapsedS,
      override,
    );
  }

  /**
   * Claims crossings in the caller's transaction and enqueues, for each one claimed, its event, and at
   * 100 % its command; records tenant blocks in the caps table. Returns the ones claimed here.
   */
  async claim(tx: Tx, crossings: Crossing[], now: Date): Promise<Crossing[]> {
    if (crossings.length === 0) return [];
    const unique = [...firstReached(crossings).values()];
    const claimedIds = await this.repository.claim(tx, unique, now);
    const claimed = unique.filter((crossing) => claimedIds.has(crossing.id));
    const messages: OutboxMessage[] = [];
    for (const crossing of claimed) {
      messages.push(this.event(crossing, now));
      if (crossing.threshold === 100) messages.push(this.command(crossing, now));
      if (crossing.scope === 'tenant' && crossing.day) {
        await this.dailyCaps.recordCrossing(
          tx,
          { ...crossing, day: crossing.day, blocked: crossing.threshold === 100 },
          now,
        );
      }
    }
    await this.outbox.enqueue(tx, messages);
    return claimed;
  }

  /** After the claiming transaction committed: remember what is settled, count what this replica claimed. */
  committed(attempted: Crossing[], claimed: Crossing[]): void {
    if (this.known.size > MAX_REMEMBERED) this.known.clear();
    for (const crossing of attempted) this.known.add(crossing.id);
    for (const crossing of claimed) {
      this.metrics.crossings.inc({ scope: crossing.scope, cap: crossing.cap, threshold: String(crossing.threshold) });
    }
  }

  private crossing(
    context: SpendContext,
    scope: CapScope,
    cap: CapName,
    threshold: Threshold,
    limit: bigint,
    observed: bigint,
    override: CapOverride | null,
  ): Crossing {
    const period = scope === 'run' ? `run:${context.runId}` : `day:${context.day}`;
    const id = createHash('sha256')
      .update(JSON.stringify([scope, context.tenantId, period, cap, threshold, limit.toString()]))
      .digest('hex')
      .slice(0, 40);
    return {
      id: `cc-${id}`,
      tenantId: context.tenantId,
      projectId: context.projectId,
      runId: context.runId,
      phase: context.phase,
      role: context.role,
      at: context.at ?? null,
      scope,
      cap,
      threshold,
      limit,
      observed,
      day: scope === 'tenant' ? context.day : null,
      resetsAt: scope === 'tenant' ? context.resetsAt : null,
      override,
    };
  }

  private event(crossing: Crossing, now: Date): OutboxMessage {
    const type: EventType = crossing.threshold === 100 ? 'cap_hit' : 'cap_warning';
    const event: AgentEventInput = {
      specversion: '1.0',
      id: crossing.id,
      source: COST_CAP_SOURCE,
      type,
      time: (crossing.at ?? now).toISOString(),
      subject: crossing.tenantId,
      datacontenttype: 'application/json',
      data: {
        tenant_id: crossing.tenantId,
        project_id: crossing.projectId,
        run_id: crossing.runId,
        ...(crossing.phase ? { phase: crossing.phase } : {}),
        ...(crossing.role ? { role: crossing.role } : {}),
        ...explanation(crossing),
      },
    };
    const parsed = parseAgentEvent(event);
    if (!parsed.ok) throw new Error(`cost-cap built an invalid ${type} event: ${parsed.reason}`);
    return { messageId: `event:${crossing.id}`, topic: 'events', key: crossing.runId, payload: event };
  }

  private command(crossing: Crossing, now: Date): OutboxMessage {
    const base = {
      version: 1 as const,
      command_id: `${crossing.id}-command`,
      issued_at: now.toISOString(),
      issued_by: 'cost-cap',
      tenant_id: crossing.tenantId,
    };
    const what = `${crossing.scope} ${crossing.cap} cap of ${explanation(crossing).limit} reached (${explanation(crossing).observed})`;
    const command: ControlCommand =
      crossing.scope === 'run'
        ? {
            ...base,
            type: 'short_circuit_run',
            reason: `${what}: stop with a partial artifact and a summary`,
            project_id: crossing.projectId,
            run_id: crossing.runId,
            instruction: 'partial_artifact_and_summary',
            cap: explanation(crossing),
          }
        : {
            ...base,
            type: 'block_tenant',
            reason: `${what}: blocked until ${crossing.resetsAt!.toISOString()} or a raise`,
            cause: 'cap_hit',
            until: crossing.resetsAt!.toISOString(),
            cap: explanation(crossing),
          };
    return { messageId: `control:${command.command_id}`, topic: 'control', key: crossing.tenantId, payload: command };
  }
}

/** Each crossing once, as the earliest spend that reached it (a batch may reach one crossing several times). */
function firstReached(crossings: Crossing[]): Map<string, Crossing> {
  const first = new Map<string, Crossing>();
  for (const crossing of crossings) {
    const seen = first.get(crossing.id);
    if (!seen || (crossing.at && seen.at && crossing.at < seen.at)) first.set(crossing.id, crossing);
  }
  return first;
}

/** A cap amount in its unit: decimal USD for money, an integer for tokens and seconds. */
export function formatCapValue(cap: CapName, value: bigint): string {
  return cap === 'cost' || cap === 'external' ? formatUsd(value) : value.toString();
}

function explanation(crossing: Crossing) {
  return {
    scope: crossing.scope,
    cap: crossing.cap,
    limit: formatCapValue(crossing.cap, crossing.limit),
    observed: formatCapValue(crossing.cap, crossing.observed),
    ...(crossing.day ? { day: crossing.day } : {}),
    ...(crossing.resetsAt ? { resets_at: crossing.resetsAt.toISOString() } : {}),
    ...(crossing.override
      ? {
          override: {
            override_id: crossing.override.id,
            limit: formatCapValue(crossing.cap, crossing.override.value),
            expires_at: crossing.override.expiresAt.toISOString(),
            actor: crossing.override.actor,
            reason: crossing.override.reason,
          },
        }
      : {}),
  };
}
