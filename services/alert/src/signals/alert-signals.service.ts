import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { AlertRules, isAlertRuleId, type AlertSignal } from '@agentmeter/contracts';
import { LifecycleService, type Observation, type ObserveOutcome } from '../lifecycle/lifecycle.service';
import { LOGGER } from '../logger';

/**
 * Alert signals from other services (agent.alerts.v1): each is an observation of its key, firing or
 * resolved, routed to its audience like our own alerts. Only "service.*" rules are accepted, so another
 * service cannot fire (or resolve) one of the alert service's own rules.
 */
@Injectable()
export class AlertSignalsService {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly lifecycle: LifecycleService,
  ) {}

  async handle(signals: readonly AlertSignal[]): Promise<ObserveOutcome[]> {
    const observations: Observation[] = [];
    for (const signal of signals) {
      if (!signal.rule.startsWith(AlertRules.ServicePrefix) || isAlertRuleId(signal.rule)) {
        this.logger.warn({ rule: signal.rule, source: signal.source }, 'alert signal skipped: rule must be service.*');
        continue;
      }
      observations.push({
        rule: signal.rule,
        tenantId: signal.tenant_id,
        scope: signal.scope,
        period: signal.period,
        firing: signal.status === 'firing',
        audience: signal.audience,
        severity: signal.severity,
        title: signal.title,
        body: signal.body ?? '',
        thresholdFingerprint: signal.threshold ?? '',
      });
    }
    return this.lifecycle.observe(observations);
  }
}
