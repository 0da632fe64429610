import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import type { RunCaps } from '@agentmeter/contracts';
import {
  type CapPolicy,
  type EffectiveLimits,
  nextDayStart,
  parseUsd,
  resolveLimits,
  type RunCapValues,
  tenantDay,
} from '@agentmeter/domain';
import { CostCapConfig } from '../config';
import type { RunRecord, TenantSettings } from '../settings/settings.repository';
import { SettingsCache } from '../settings/settings.cache';

export interface CapContext {
  settings: TenantSettings;
  run: RunRecord | null;
  limits: EffectiveLimits;
  /** The tenant-day spend at `at` counts toward, and when that day's budget resets. */
  day: string;
  resetsAt: Date;
}

/** The limits in force for a run of a tenant, from the cached settings (libs/domain resolveLimits). */
@Injectable()
export class LimitsService {
  readonly defaults: CapPolicy;

  constructor(
    @Inject(CostCapConfig) config: CostCapConfig,
    private readonly settings: SettingsCache,
  ) {
    const usd = (value: string | undefined) => (value === undefined ? null : parseUsd(value));
    const int = (value: number | undefined) => (value === undefined ? null : BigInt(value));
    this.defaults = {
      dailyCostMicros: usd(config.COST_CAP_DEFAULT_DAILY_USD),
      run: {
        tokens: int(config.COST_CAP_DEFAULT_RUN_TOKENS),
        wallTimeS: int(config.COST_CAP_DEFAULT_RUN_WALL_TIME_S),
        costMicros: usd(config.COST_CAP_DEFAULT_RUN_USD),
        externalMicros: usd(config.COST_CAP_DEFAULT_RUN_EXTERNAL_USD),
      },
    };
  }

  /**
   * @param at the time the spend happens (its tenant-day)
   * @param now the time of the decision (which raises are in force)
   * @param declared caps the caller declares for the run now (tightest wins with the stored ones)
   */
  async context(
    tenantId: string,
    projectId: string,
    runId: string,
    at: Date,
    now: Date,
    declared: RunCapValues | null = null,
  ): Promise<CapContext> {
    const [settings, run] = await Promise.all([this.settings.tenant(tenantId), this.settings.run(tenantId, runId)]);
    const runCaps = tightest(run?.caps ?? null, declared);
    const limits = resolveLimits({
      defaults: this.defaults,
      tenant: settings.tenant,
      project: settings.projects.get(projectId) ?? null,
      runCaps,
      runId,
      overrides: settings.overrides,
      now,
    });
    const day = tenantDay(at, settings.timeZone);
    return { settings, run, limits, day, resetsAt: nextDayStart(day, settings.timeZone) };
  }
}

export function runCapsFromWire(caps: z.output<typeof RunCaps> | undefined): RunCapValues | null {
  if (!caps) return null;
  return {
    tokens: caps.max_tokens === undefined ? null : BigInt(caps.max_tokens),
    wallTimeS: caps.max_wall_time_s === undefined ? null : BigInt(caps.max_wall_time_s),
    costMicros: caps.max_cost_usd === undefined ? null : parseUsd(caps.max_cost_usd),
    externalMicros: caps.max_external_usd === undefined ? null : parseUsd(caps.max_external_usd),
  };
}

/** Key by key, the smaller cap (a missing one loses to any). */
export function tightest(a: RunCapValues | null, b: RunCapValues | null): RunCapValues | null {
  if (!a) return b;
  if (!b) return a;
  const min = (x: bigint | null, y: bigint | null) => (x === null ? y : y === null ? x : x < y ? x : y);
  return {
    tokens: min(a.tokens, b.tokens),
    wallTimeS: min(a.wallTimeS, b.wallTimeS),
    costMicros: min(a.costMicros, b.costMicros),
    externalMicros: min(a.externalMicros, b.externalMicros),
  };
}
