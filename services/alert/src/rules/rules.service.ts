import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { AlertRules, PLATFORM_TENANT, type AlertRuleId } from '@agentmeter/contracts';
import {
  Clock,
  dailyTokenUsage,
  dayPeriod,
  EVALUATED_RULES,
  failingContacts,
  implementerDrift,
  mcpBreakers,
  modelErrorSpikes,
  overdueProofs,
  quietPeriodMs,
  RULE_DEFINITIONS,
  stalledPhases,
  sustainedQueueLatency,
  toolErrorRates,
  type RuleObservation,
} from '@agentmeter/domain';
import { AlertMetrics } from '../alert.metrics';
import { AlertConfig } from '../config';
import { AlertQueuesClient } from '../dispatch/alert-queues';
import { GroupsRepository } from '../dispatch/groups.repository';
import { LifecycleRepository } from '../lifecycle/lifecycle.repository';
import { LifecycleService, type ObserveOutcome } from '../lifecycle/lifecycle.service';
import { LOGGER } from '../logger';
import { MuteReplayService } from '../mutes/mute-replay.service';
import { ThresholdsService, type Params, type RuleThresholds } from '../thresholds/thresholds.service';
import { RulesRepository, type TenantWindows } from './rules.repository';

const RAW_RETENTION_MS = 31 * 86_400_000;

/**
 * Time-based rules (docs/alert.md "Rules"): each evaluation reads the facts of every tenant, asks the rule which
 * alerts hold now, applies them, and resolves the rule's firing alerts it no longer reports. Any replica
 * may run any evaluation; the lifecycle's row locks make overlapping runs harmless.
 */
@Injectable()
export class RulesService {
  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly facts: RulesRepository,
    private readonly thresholds: ThresholdsService,
    private readonly lifecycle: LifecycleService,
    private readonly alerts: LifecycleRepository,
    private readonly groups: GroupsRepository,
    private readonly queues: AlertQueuesClient,
    private readonly metrics: AlertMetrics,
    private readonly clock: Clock,
    private readonly muteReplay: MuteReplayService,
  ) {}

  static readonly evaluatedRules: readonly AlertRuleId[] = EVALUATED_RULES;

  async evaluate(rule: string, now: Date = this.clock.now()): Promise<ObserveOutcome[]> {
    const timer = this.metrics.evaluations.startTimer({ rule });
    try {
      const outcome = await this.evaluateRule(rule as AlertRuleId, now);
      timer({ outcome: 'ok' });
      return outcome;
    } catch (error) {
      timer({ outcome: 'error' });
      throw error;
    }
  }

  private async evaluateRule(rule: AlertRuleId, now: Date): Promise<ObserveOutcome[]> {
    if (!RulesService.evaluatedRules.includes(rule)) throw new Error(`rule ${rule} is not a time-based rule`);
    const thresholds = await this.thresholds.forRule(rule);
    const observations = await this.observationsOf(rule, thresholds, now);
    const paramsOf = (tenantId: string) => thresholds.of(tenantId) as Params;
    const applied = await this.lifecycle.observe(observations, (o) => paramsOf(o.tenantId), now);
    const currentPeriod = rule === AlertRules.DailyTokens ? dayPeriod(now) : '';
    const resolved = await this.lifecycle.resolveUnobserved(rule, observations, paramsOf, currentPeriod, now);
    return [...applied, ...resolved];
  }

  private async observationsOf(rule: AlertRuleId, thresholds: RuleThresholds, now: Date): Promise<RuleObservation[]> {
    const minutesAgo = (minutes: number) => new Date(now.getTime() - minutes * 60_000);
    switch (rule) {
      case AlertRules.PhaseStalled: {
        const t = thresholds as RuleThresholds<typeof AlertRules.PhaseStalled>;
        const hours = Math.min(t.defaults().hours, ...t.overridden().map(([, p]) => p.hours));
        return stalledPhases(await this.facts.runningPhasesOfAllTenants(minutesAgo(hours * 60)), now, t.of);
      }
      case AlertRules.ProofOverdue:
        return overdueProofs(
          await this.facts.openProofsOfAllTenants(now, new Date(now.getTime() - RAW_RETENTION_MS)),
          now,
          (thresholds as RuleThresholds<typeof AlertRules.ProofOverdue>).of,
        );
      case AlertRules.ModelErrorSpike: {
        const params = (thresholds as RuleThresholds<typeof AlertRules.ModelErrorSpike>).of(PLATFORM_TENANT);
        return modelErrorSpikes(await this.facts.modelCallCounts(minutesAgo(params.window_minutes), now), params);
      }
      case AlertRules.WebhookFailures: {
        const params = (thresholds as RuleThresholds<typeof AlertRules.WebhookFailures>).of(PLATFORM_TENANT);
        return failingContacts(
          await this.facts.deliveryFailuresOfAllTenants(minutesAgo(params.window_minutes)),
          params,
        );
      }
      case AlertRules.QueueLatency: {
        const params = (thresholds as RuleThresholds<typeof AlertRules.QueueLatency>).of(PLATFORM_TENANT);
        const buckets = Math.max(1, Math.ceil(params.duration_minutes / params.bucket_minutes));
        return sustainedQueueLatency(
          await this.facts.queueLatencyBuckets(now, params.bucket_minutes * 60, buckets),
          params,
        );
      }
      case AlertRules.DailyTokens:
        return dailyTokenUsage(
          await this.facts.dailyTokensOfAllTenants(dayPeriod(now)),
          now,
          (thresholds as RuleThresholds<typeof AlertRules.DailyTokens>).of,
        );
      case AlertRules.ToolErrorRate: {
        const t = thresholds as RuleThresholds<typeof AlertRules.ToolErrorRate>;
        return toolErrorRates(await this.facts.toolCallCountsOfAllTenants(windows(t), now), t.of);
      }
      case AlertRules.McpBreakerOpen: {
        const t = thresholds as RuleThresholds<typeof AlertRules.McpBreakerOpen>;
        const limit = Math.max(t.defaults().consecutive_errors, ...t.overridden().map(([, p]) => p.consecutive_errors));
        const rows = await this.facts.mcpLatestStatusesOfAllTenants(windows(t), limit, now);
        const open = mcpBreakers(rows, t.of);
        // Replaced whole and synchronously, so a scrape never sees half of it; unseen servers leave the gauge.
        this.metrics.mcpBreakers.reset();
        for (const [server, state] of breakerStates(
          rows.map((r) => r.server),
          open.map((o) => o.scope.slice('mcp:'.length)),
        )) {
          this.metrics.mcpBreakers.set({ server }, state);
        }
        return open;
      }
      case AlertRules.ImplementerDrift: {
        // The windows are the defaults (one query for every tenant); ratio and sample sizes are per tenant.
        const t = thresholds as RuleThresholds<typeof AlertRules.ImplementerDrift>;
        const defaults = t.defaults();
        const recentFrom = minutesAgo(defaults.recent_hours * 60);
        const baselineFrom = new Date(recentFrom.getTime() - defaults.baseline_days * 86_400_000);
        return implementerDrift(await this.facts.implementerDriftOfAllTenants(baselineFrom, recentFrom, now), t.of);
      }
      default:
        throw new Error(`rule ${rule} has no evaluation`);
    }
  }

  /**
   * What a Redis restart loses, re-enqueued from PostgreSQL (the recovery loop, every ALERT_RECOVERY_EVERY_MS
   * and when Redis is back): flushes of open groups past their flush time, and jobs of unfinished deliveries
   * no worker holds. Job ids are deterministic and each delivery is claimed in the database before it is
   * sent, so a job added twice sends once.
   */
  async recoverScheduled(now: Date = this.clock.now()): Promise<{ groups: number; deliveries: number }> {
    let groups = 0;
    for (const group of await this.groups.overdueGroupsOfAllTenants(now)) {
      if ((await this.queues.ensureFlush(group.id)) === 'added') groups++;
    }
    let deliveries = 0;
    for (const delivery of await this.groups.staleDeliveriesOfAllTenants(now, now)) {
      if ((await this.queues.ensureDelivery(delivery.channel, delivery.id)) === 'added') deliveries++;
    }
    if (groups + deliveries > 0) this.logger.warn({ groups, deliveries }, 'alert jobs recovered from the database');
    return { groups, deliveries };
  }

  /**
   * Housekeeping, every ALERT_SWEEP_EVERY_MS: groups whose flush job was lost, deliveries whose job was
   * lost or whose worker died mid-send, event alerts that went quiet, mutes over whose replay never ran, old
   * samples.
   */
  async sweep(
    now: Date = this.clock.now(),
  ): Promise<{ groups: number; deliveries: number; resolved: number; mutes: number }> {
    const groups = await this.groups.overdueGroupsOfAllTenants(new Date(now.getTime() - 5_000));
    for (const group of groups) await this.queues.flushGroupAt(group.id, 0);

    let deliveries = 0;
    const stale = await this.groups.staleDeliveriesOfAllTenants(
      new Date(now.getTime() - this.config.ALERT_STALE_AFTER_MS),
      now,
    );
    for (const delivery of stale) {
      if ((await this.queues.ensureDelivery(delivery.channel, delivery.id)) === 'added') deliveries++;
    }

    const eventRules = (Object.keys(RULE_DEFINITIONS) as AlertRuleId[]).filter(
      (rule) => RULE_DEFINITIONS[rule].kind === 'event',
    );
    // The shortest quiet period is an hour or more; candidates are alerts quiet for at least a minute.
    const candidates = await this.alerts.quietFiringOfAllTenants(
      eventRules,
      AlertRules.ServicePrefix,
      new Date(now.getTime() - 60_000),
    );
    const params = new Map<string, Params>();
    const paramsOf = async (rule: string, tenantId: string) => {
      const key = `${rule}\u0000${tenantId}`;
      if (!params.has(key)) params.set(key, await this.thresholds.paramsFor(rule, tenantId));
      return params.get(key)!;
    };
    const quiet = [];
    for (const alert of candidates) {
      const p = await paramsOf(alert.rule, alert.tenant_id);
      if (now.getTime() - alert.last_observed_at.getTime() >= quietPeriodMs(alert.rule, p)) quiet.push(alert);
    }
    const resolved = await this.lifecycle.resolveStored(
      quiet,
      (alert) => params.get(`${alert.rule}\u0000${alert.tenant_id}`)!,
      now,
    );

    const mutes = await this.muteReplay.replayEnded(now);

    await this.groups.pruneSamples(new Date(now.getTime() - RAW_RETENTION_MS));
    const outcome = { groups: groups.length, deliveries, resolved: resolved.length, mutes };
    if (outcome.groups + outcome.deliveries + outcome.resolved + outcome.mutes > 0) {
      this.logger.info(outcome, 'alert sweep');
    }
    return outcome;
  }
}

/** Servers with calls in the window: 1 when the breaker is open for some tenant, else 0. */
function breakerStates(seen: readonly string[], open: readonly string[]): Map<string, 0 | 1> {
  const states = new Map<string, 0 | 1>(seen.map((server) => [server, 0]));
  for (const server of open) states.set(server, 1);
  return states;
}

function windows(
  thresholds: RuleThresholds<typeof AlertRules.ToolErrorRate | typeof AlertRules.McpBreakerOpen>,
): TenantWindows {
  return {
    defaultMinutes: thresholds.defaults().window_minutes,
    overrides: thresholds.overridden().map(([tenant, params]) => [tenant, params.window_minutes]),
  };
}
