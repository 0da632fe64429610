import { Inject, Injectable } from '@nestjs/common';
import { AlertRules, type AgentEvent, type AlertThresholds } from '@agentmeter/contracts';
import { capObservations, Clock, validationFailuresObservation, type RuleObservation } from '@agentmeter/domain';
import { AlertConfig } from '../config';
import { LifecycleService, type ObserveOutcome } from '../lifecycle/lifecycle.service';
import { ThresholdsService } from '../thresholds/thresholds.service';
import { AlertEventsRepository } from './alert-events.repository';

type Of<T extends AgentEvent['type']> = AgentEvent & { type: T };

/** The event types that raise alerts; the rest of agent.events.v1 is skipped. */
export const ALERTING_EVENT_TYPES: ReadonlySet<string> = new Set(['cap_hit', 'cap_warning', 'validation_failed']);

/**
 * Event rules: cap crossings (80 % / 100 %, tenant breaches) and repeated validation failures, decided from
 * agent events as they arrive. Redelivered events change nothing: the lifecycle fires an alert once, and
 * samples are counted once per event.
 */
@Injectable()
export class AlertEventsService {
  constructor(
    @Inject(AlertConfig) private readonly config: AlertConfig,
    private readonly lifecycle: LifecycleService,
    private readonly thresholds: ThresholdsService,
    private readonly samples: AlertEventsRepository,
    private readonly clock: Clock,
  ) {}

  async handle(events: readonly AgentEvent[]): Promise<ObserveOutcome[]> {
    const observations: RuleObservation[] = [];
    const oldest = this.clock.now().getTime() - this.config.ALERT_MAX_EVENT_AGE_MS;
    for (const event of events) {
      if (Date.parse(event.time) < oldest) continue;
      if (event.type === 'cap_hit' || event.type === 'cap_warning') {
        observations.push(...(await this.caps(event)));
      } else if (event.type === 'validation_failed') {
        const observation = await this.validationFailure(event);
        if (observation) observations.push(observation);
      }
    }
    return this.lifecycle.observe(observations);
  }

  private async caps(event: Of<'cap_hit'> | Of<'cap_warning'>): Promise<RuleObservation[]> {
    const warning = (await this.thresholds.paramsFor(AlertRules.CapWarning, event.data.tenant_id)) as AlertThresholds<
      typeof AlertRules.CapWarning
    >;
    return capObservations(
      {
        type: event.type,
        tenantId: event.data.tenant_id,
        runId: event.data.run_id,
        scope: event.data.scope,
        cap: event.data.cap,
        limit: event.data.limit,
        observed: event.data.observed,
        time: new Date(event.time),
        ...(event.data.day ? { day: event.data.day } : {}),
      },
      warning,
    );
  }

  private async validationFailure(event: Of<'validation_failed'>): Promise<RuleObservation | null> {
    const tenantId = event.data.tenant_id;
    const params = (await this.thresholds.paramsFor(AlertRules.ValidationFailures, tenantId)) as AlertThresholds<
      typeof AlertRules.ValidationFailures
    >;
    const { count, lastDetail } = await this.samples.countSample(
      tenantId,
      {
        rule: AlertRules.ValidationFailures,
        scope: `run:${event.data.run_id}`,
        id: JSON.stringify([event.source, event.id]),
        at: new Date(event.time),
        detail: `${event.data.phase}: ${event.data.reason}`.slice(0, 1000),
      },
      params.window_minutes * 60_000,
    );
    return validationFailuresObservation(tenantId, event.data.run_id, count, params, lastDetail);
  }
}
