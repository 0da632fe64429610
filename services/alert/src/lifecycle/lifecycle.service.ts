import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  alertKey,
  Clock,
  decideAlert,
  lifecyclePolicyOf,
  muteVerdict,
  thresholdFingerprint,
  type AlertDecision,
  type RuleObservation,
} from '@agentmeter/domain';
import { AlertMetrics } from '../alert.metrics';
import { AlertConfig } from '../config';
import { AlertQueuesClient } from '../dispatch/alert-queues';
import { LOGGER } from '../logger';
import { MutesRepository } from '../mutes/mutes.repository';
import { ThresholdsService, type Params } from '../thresholds/thresholds.service';
import { LifecycleRepository, type AlertFacts, type StoredAlert } from './lifecycle.repository';

/** An observation as the lifecycle takes it; signals bring their own threshold fingerprint. */
/** `groupKey` keeps apart alerts of one rule that their source groups apart (Alertmanager's group key). */
export type Observation = RuleObservation & { thresholdFingerprint?: string; groupKey?: string };

export interface ObserveOutcome {
  key: string;
  decision: AlertDecision;
  /** Set when a notification was recorded; newGroup when it opened a group (whose flush must be enqueued). */
  notification?: { outcome: 'queued' | 'muted'; groupId: string | null; newGroup?: { id: string; flushAt: Date } };
}

/**
 * Runs observations through the alert lifecycle. Each alert is decided and written in its own transaction
 * under a row lock, and the notification (queued into a group, or muted) is recorded in the same
 * transaction: that is the claim. Nothing is sent from here; deliveries are created when the group
 * flushes, after its window.
 */
@Injectable()
export class LifecycleService {
  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly repository: LifecycleRepository,
    private readonly mutes: MutesRepository,
    private readonly thresholds: ThresholdsService,
    private readonly queues: AlertQueuesClient,
    private readonly metrics: AlertMetrics,
    private readonly clock: Clock,
  ) {}

  /**
   * Applies observations. `paramsOf` gives the thresholds in force (callers that evaluated a rule already
   * have them); otherwise they are read per observation.
   */
  async observe(
    observations: readonly Observation[],
    paramsOf?: (observation: Observation) => Params,
    now: Date = this.clock.now(),
  ): Promise<ObserveOutcome[]> {
    const outcomes: ObserveOutcome[] = [];
    // Key order: two callers locking overlapping sets of alerts take the locks in the same order.
    const sorted = [...observations].sort((a, b) => compare(alertKey(a), alertKey(b)));
    for (const observation of sorted) {
      const params = paramsOf
        ? paramsOf(observation)
        : await this.thresholds.paramsFor(observation.rule, observation.tenantId);
      outcomes.push(await this.observeOne(observation, params, now));
    }
    return outcomes;
  }

  /** Resolves the firing alerts of an evaluated rule that its evaluation no longer reported. */
  async resolveUnobserved(
    rule: string,
    observed: readonly Observation[],
    paramsOf: (tenantId: string) => Params,
    currentPeriod: string,
    now: Date = this.clock.now(),
  ): Promise<ObserveOutcome[]> {
    const seen = new Set(observed.map((o) => alertKey(o)));
    const gone = (await this.repository.firingOfRuleOfAllTenants(rule)).filter((alert) => !seen.has(alert.alert_key));
    return this.resolveStored(
      gone,
      (alert) => {
        const params = paramsOf(alert.tenant_id);
        // An alert of a period that is over resolves without a message: the period ended, nothing was fixed.
        return alert.period === currentPeriod ? params : { ...params, notify_resolved: false };
      },
      now,
    );
  }

  /** Resolves stored alerts (quiet event alerts, unobserved evaluated ones). */
  async resolveStored(
    alerts: readonly StoredAlert[],
    paramsOf: (alert: StoredAlert) => Params,
    now: Date = this.clock.now(),
  ): Promise<ObserveOutcome[]> {
    const outcomes: ObserveOutcome[] = [];
    for (const alert of [...alerts].sort((a, b) => compare(a.alert_key, b.alert_key))) {
      const observation: Observation = {
        rule: alert.rule,
        tenantId: alert.tenant_id,
        scope: alert.scope,
        period: alert.period,
        firing: false,
        audience: alert.audience,
        severity: alert.severity,
        title: alert.title,
        body: alert.body,
        thresholdFingerprint: alert.threshold_fp,
      };
      outcomes.push(await this.observeOne(observation, paramsOf(alert), now));
    }
    return outcomes;
  }

  private async observeOne(observation: Observation, params: Params, now: Date): Promise<ObserveOutcome> {
    const key = alertKey(observation);
    const facts: AlertFacts = {
      key,
      rule: observation.rule,
      tenantId: observation.tenantId,
      scope: observation.scope,
      period: observation.period,
      audience: observation.audience,
      severity: observation.severity,
      title: observation.title,
      body: observation.body,
      thresholdFingerprint: observation.thresholdFingerprint ?? thresholdFingerprint(params),
    };
    const policy = lifecyclePolicyOf(params);
    // Two creators of the same new alert: the loser of the insert decides again, on the winner's row.
    for (let attempt = 0; attempt < 3; attempt++) {
      const outcome = await this.repository.transaction(async (tx): Promise<ObserveOutcome | 'again'> => {
        const stored = await tx.lock(key);
        const state = stored && {
          status: stored.status,
          thresholdFingerprint: stored.threshold_fp,
          lastNotifiedAt: stored.last_notified_at,
        };
        const decision = decideAlert(
          state,
          { firing: observation.firing, thresholdFingerprint: facts.thresholdFingerprint },
          policy,
          now,
        );
        if (decision.action === 'none') {
          if (stored && observation.firing) await tx.touch(key, facts.body, now);
          return { key, decision };
        }
        if (decision.action === 'notify') {
          if (!stored) {
            if (!(await tx.insertFiring(facts, now))) return 'again';
          } else {
            await tx.markFiring(facts, now, decision.kind === 'firing');
          }
        } else {
          await tx.markResolved(key, now);
          if (!decision.notify) return { key, decision };
        }
        const kind = decision.action === 'notify' ? decision.kind : 'resolved';
        const { mutes, timings } = await this.mutes.inForceOfTenant(observation.tenantId, now, tx.manager);
        const verdict = muteVerdict(observation.rule, observation.audience, now, mutes, timings);
        const base = {
          alertKey: key,
          tenantId: observation.tenantId,
          rule: observation.rule,
          kind,
          severity: observation.severity,
          scope: observation.scope,
          period: observation.period,
          title: observation.title,
          body: observation.body,
          at: now,
        } as const;
        if (decision.action === 'notify') await tx.markNotified(key, now);
        if (verdict.muted) {
          await tx.insertNotification({ ...base, groupId: null, outcome: 'muted', mutedBy: verdict.by });
          return { key, decision, notification: { outcome: 'muted', groupId: null } };
        }
        const group = await tx.joinGroup(
          randomUUID(),
          observation.tenantId,
          observation.rule,
          observation.audience,
          observation.groupKey ?? '',
          now,
          new Date(now.getTime() + this.config.ALERT_GROUP_WINDOW_MS),
        );
        await tx.insertNotification({ ...base, groupId: group.id, outcome: 'queued', mutedBy: null });
        return {
          key,
          decision,
          notification: { outcome: 'queued', groupId: group.id, ...(group.created ? { newGroup: group } : {}) },
        };
      });
      if (outcome === 'again') continue;
      await this.afterCommit(observation, outcome, now);
      return outcome;
    }
    throw new Error(`alert ${observation.rule}: could not settle the alert row after 3 attempts`);
  }

  private async afterCommit(observation: Observation, outcome: ObserveOutcome, now: Date): Promise<void> {
    const { decision, notification } = outcome;
    if (decision.action === 'notify' && decision.kind === 'firing') this.metrics.fired.inc({ rule: observation.rule });
    if (decision.action === 'resolve') this.metrics.resolved.inc({ rule: observation.rule });
    if (!notification) return;
    const kind = decision.action === 'notify' ? decision.kind : 'resolved';
    this.metrics.notifications.inc({ rule: observation.rule, kind, outcome: notification.outcome });
    if (notification.outcome === 'muted') {
      this.metrics.muted.inc({ rule: observation.rule });
      this.logger.info({ tenant_id: observation.tenantId, rule: observation.rule, kind }, 'alert muted');
      return;
    }
    const created = notification.newGroup;
    // A crash before this line leaves an open group past its flush time: the sweep enqueues it.
    if (created) await this.queues.flushGroupAt(created.id, created.flushAt.getTime() - now.getTime());
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
