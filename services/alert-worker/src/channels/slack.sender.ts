import { Inject, Injectable } from '@nestjs/common';
import { IncomingWebhook, type FetchFunction } from '@slack/webhook';
import type { AlertMessage } from '@agentmeter/contracts';
import { Clock, httpVerdict, retryAfterMs } from '@agentmeter/domain';
import { WorkerConfig } from '../config';
import { DeliveryFailure } from './delivery-failure';
import { SafeHttp } from './safe-http';

const SEVERITY_EMOJI = { info: ':information_source:', warning: ':warning:', critical: ':rotating_light:' } as const;

/**
 * Slack incoming webhooks with @slack/webhook. Its HTTP goes through SafeHttp (the SSRF-checked, pinned
 * client) by way of the library's fetch option, which is also where the Retry-After of a 429 is read:
 * the library itself neither retries nor exposes response headers, and retries are BullMQ's job here.
 */
@Injectable()
export class SlackSender {
  constructor(
    @Inject(WorkerConfig) private readonly config: WorkerConfig,
    private readonly http: SafeHttp,
    private readonly clock: Clock,
  ) {}

  async send(url: string, message: AlertMessage): Promise<{ statusCode: number | null }> {
    // What Slack answered (the library's error keeps the status but drops the headers).
    const answer: { status?: number; retryAfter?: string } = {};
    const fetch: FetchFunction = async (target, init) => {
      const response = await this.http.post(String(target), 'slack', init?.headers ?? {}, String(init?.body ?? ''));
      const retryAfter = response.headers['retry-after'];
      answer.status = response.status;
      answer.retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
      return fetchResponse(response.status, response.body, String(target));
    };
    const webhook = new IncomingWebhook(url, { fetch, timeout: this.config.ALERT_DELIVERY_TIMEOUT_MS });
    try {
      await webhook.send({
        text: message.subject,
        blocks: [
          {
            type: 'section',
            text: { type: 'mrkdwn', text: `${SEVERITY_EMOJI[message.severity]} *${escape(message.subject)}*` },
          },
          { type: 'section', text: { type: 'mrkdwn', text: escape(message.text).slice(0, 2900) } },
        ],
      });
      return { statusCode: answer.status ?? null };
    } catch (error) {
      if (error instanceof DeliveryFailure) throw error;
      const original = (error as { original?: unknown }).original;
      if (original instanceof DeliveryFailure) throw original;
      if (answer.status !== undefined) {
        const verdict = httpVerdict(answer.status);
        throw new DeliveryFailure(
          `Slack answered HTTP ${answer.status}: ${(error as { body?: string }).body ?? ''}`,
          verdict === 'sent' ? 'retry' : verdict,
          answer.status,
          retryAfterMs(answer.retryAfter, this.clock.now()),
        );
      }
      throw new DeliveryFailure(`Slack request failed: ${(error as Error).message}`, 'retry');
    }
  }
}

type FetchResponse = Awaited<ReturnType<FetchFunction>>;

function fetchResponse(status: number, body: string, url: string): FetchResponse {
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: '',
    url,
    headers: { get: () => null, entries: () => [] },
    arrayBuffer: async () => new TextEncoder().encode(body).buffer as ArrayBuffer,
    json: async () => JSON.parse(body) as unknown,
    text: async () => body,
  };
}

/** Slack mrkdwn control characters. */
function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
