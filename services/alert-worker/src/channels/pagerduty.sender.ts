import { Injectable } from '@nestjs/common';
import type { AlertMessage } from '@agentmeter/contracts';
import { Clock, httpVerdict, retryAfterMs } from '@agentmeter/domain';
import { DeliveryFailure } from './delivery-failure';
import { SafeHttp } from './safe-http';

const SEVERITY = { critical: 'critical', warning: 'warning', info: 'info' } as const;

/**
 * PagerDuty Events v2 (docs/alert.md "Channels"): one event per alert of the grouped
 * message, posted to the contact's Events API URL with its routing key. `dedup_key` is the alert key, so a
 * repeat updates the open incident and a resolved alert resolves it. PagerDuty answers 202 on success.
 */
@Injectable()
export class PagerDutySender {
  constructor(
    private readonly http: SafeHttp,
    private readonly clock: Clock,
  ) {}

  async send(url: string, routingKey: string, message: AlertMessage): Promise<{ statusCode: number | null }> {
    let status: number | null = null;
    for (const alert of message.alerts) {
      const event =
        alert.kind === 'resolved'
          ? { routing_key: routingKey, event_action: 'resolve', dedup_key: alert.alert_key }
          : {
              routing_key: routingKey,
              event_action: 'trigger',
              dedup_key: alert.alert_key,
              payload: {
                summary: alert.title.slice(0, 1024),
                source: `agentmeter/${message.tenant_id}`,
                severity: SEVERITY[alert.severity],
                timestamp: alert.at,
                component: alert.scope || undefined,
                class: alert.rule,
                custom_details: { body: alert.body, period: alert.period, audience: message.audience },
              },
            };
      const answer = await this.http.post(
        url,
        'webhook',
        { 'content-type': 'application/json', 'user-agent': 'AgentMeter-Alerts/1' },
        JSON.stringify(event),
      );
      const verdict = httpVerdict(answer.status);
      if (verdict !== 'sent') {
        const retryAfter = answer.headers['retry-after'];
        throw new DeliveryFailure(
          `PagerDuty answered HTTP ${answer.status}: ${answer.body.slice(0, 200)}`,
          verdict,
          answer.status,
          retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, this.clock.now()),
        );
      }
      status = answer.status;
    }
    return { statusCode: status };
  }
}
