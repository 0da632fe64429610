import { Injectable } from '@nestjs/common';
import { AlertWebhookHeaders, type AlertMessage } from '@agentmeter/contracts';
import { Clock, httpVerdict, retryAfterMs, signWebhook } from '@agentmeter/domain';
import { DeliveryFailure } from './delivery-failure';
import { SafeHttp } from './safe-http';

/**
 * Generic webhooks (docs/alert.md "Channels"): the grouped message as JSON, signed with the
 * contact's secret: HMAC-SHA256 over "<timestamp>.<body>" (headers in AlertWebhookHeaders). The delivery
 * id is the same on every attempt, so receivers can drop repeats.
 */
@Injectable()
export class WebhookSender {
  constructor(
    private readonly http: SafeHttp,
    private readonly clock: Clock,
  ) {}

  async send(
    url: string,
    secret: string,
    message: AlertMessage,
    attempt: number,
  ): Promise<{ statusCode: number | null }> {
    const body = JSON.stringify(message);
    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    const answer = await this.http.post(
      url,
      'webhook',
      {
        'content-type': 'application/json',
        'user-agent': 'AgentMeter-Alerts/1',
        [AlertWebhookHeaders.Timestamp]: String(timestamp),
        [AlertWebhookHeaders.Signature]: signWebhook(secret, timestamp, body),
        [AlertWebhookHeaders.Delivery]: message.delivery_id,
        [AlertWebhookHeaders.Attempt]: String(attempt),
      },
      body,
    );
    const verdict = httpVerdict(answer.status);
    if (verdict === 'sent') return { statusCode: answer.status };
    const retryAfter = answer.headers['retry-after'];
    throw new DeliveryFailure(
      `webhook answered HTTP ${answer.status}: ${answer.body.slice(0, 200)}`,
      verdict,
      answer.status,
      retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, this.clock.now()),
    );
  }
}
