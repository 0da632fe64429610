import { Inject, Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Clock, SecretBox } from '@agentmeter/domain';
import { DeliveryFailure } from '../channels/delivery-failure';
import { EmailSender } from '../channels/email.sender';
import { PagerDutySender } from '../channels/pagerduty.sender';
import { SlackSender } from '../channels/slack.sender';
import { WebhookSender } from '../channels/webhook.sender';
import { WorkerConfig } from '../config';
import { LOGGER } from '../logger';
import { WorkerMetrics } from '../worker.metrics';
import { DeliveryRepository, type ClaimedDelivery } from './delivery.repository';

/** A failed attempt that BullMQ should retry, after the server's Retry-After when it gave one. */
export class RetryDelivery extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
    this.name = 'RetryDelivery';
  }
}

export type DeliverOutcome = 'sent' | 'skipped';

/**
 * One attempt of one delivery: claim it (or find it done or held by another worker, and do nothing), send,
 * record the outcome and the attempt. A failure is retried (RetryDelivery) unless it is permanent or this
 * was the last attempt; then the delivery is dead-lettered (UnrecoverableError stops BullMQ retrying).
 */
@Injectable()
export class DeliveryService {
  private readonly box: SecretBox | null;

  constructor(
    @Inject(WorkerConfig) private readonly config: WorkerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly repository: DeliveryRepository,
    private readonly email: EmailSender,
    private readonly slack: SlackSender,
    private readonly webhook: WebhookSender,
    private readonly pagerDuty: PagerDutySender,
    private readonly metrics: WorkerMetrics,
    private readonly clock: Clock,
  ) {
    this.box = config.ALERT_ENCRYPTION_KEY ? SecretBox.fromConfig(config.ALERT_ENCRYPTION_KEY) : null;
  }

  async deliver(deliveryId: string, lastAttempt: boolean): Promise<DeliverOutcome> {
    const claimed = await this.repository.claim(deliveryId, this.clock.now(), this.config.ALERT_DELIVERY_LEASE_MS);
    if (!claimed) {
      // Sent or dead already (a repeated job), or another worker holds it: nothing to do.
      const status = await this.repository.statusOf(deliveryId);
      this.metrics.deliveries.inc({ channel: 'unknown', outcome: 'skipped' });
      this.logger.debug({ delivery_id: deliveryId, status }, 'delivery not claimable; skipped');
      return 'skipped';
    }
    const log = {
      delivery_id: claimed.id,
      tenant_id: claimed.tenant_id,
      channel: claimed.channel,
      attempt: claimed.attempts,
    };
    const started = performance.now();
    try {
      const { statusCode } = await this.send(claimed);
      const latencyMs = performance.now() - started;
      const now = this.clock.now();
      await this.repository.recordSent(
        claimed,
        { attempt: claimed.attempts, statusCode, error: null, retryAfterMs: null, latencyMs },
        now,
      );
      this.metrics.observeAttempt(claimed.channel, 'sent', latencyMs);
      this.metrics.delivered.observe(
        { channel: claimed.channel },
        (now.getTime() - claimed.created_at.getTime()) / 1000,
      );
      this.logger.info(log, 'alert delivered');
      return 'sent';
    } catch (error) {
      const latencyMs = performance.now() - started;
      const failure =
        error instanceof DeliveryFailure
          ? error
          : new DeliveryFailure((error as Error).message ?? String(error), 'retry');
      const record = {
        attempt: claimed.attempts,
        statusCode: failure.statusCode,
        error: failure.message,
        retryAfterMs: failure.retryAfterMs,
        latencyMs,
      };
      if (failure.verdict === 'permanent' || lastAttempt) {
        await this.repository.recordDead(claimed, record, this.clock.now());
        this.metrics.observeAttempt(claimed.channel, 'dead', latencyMs);
        this.logger.warn(
          { ...log, reason: failure.message, permanent: failure.verdict === 'permanent' },
          'delivery dead-lettered',
        );
        throw new UnrecoverableError(`delivery dead-lettered: ${failure.message}`);
      }
      await this.repository.recordRetry(claimed, record, this.clock.now());
      this.metrics.observeAttempt(claimed.channel, 'retry', latencyMs);
      this.logger.info(
        { ...log, reason: failure.message, retry_after_ms: failure.retryAfterMs },
        'delivery will be retried',
      );
      throw new RetryDelivery(failure.message, failure.retryAfterMs);
    }
  }

  private async send(delivery: ClaimedDelivery): Promise<{ statusCode: number | null }> {
    if (delivery.channel === 'banner') {
      await this.repository.writeBanners(delivery);
      return { statusCode: null };
    }
    const contact = await this.repository.contactOfDelivery(delivery.id);
    if (!contact || contact.deleted_at) throw new DeliveryFailure('the contact was deleted', 'permanent');
    if (delivery.channel === 'email') {
      if (!contact.email) throw new DeliveryFailure('the contact has no e-mail address', 'permanent');
      return this.email.send(contact.email, delivery.message);
    }
    const url = this.open(contact.url_encrypted, `contact:${delivery.contact_id}:url`);
    if (delivery.channel === 'slack') return this.slack.send(url, delivery.message);
    const secret = this.open(contact.secret_encrypted, `contact:${delivery.contact_id}:secret`);
    if (delivery.channel === 'pagerduty') return this.pagerDuty.send(url, secret, delivery.message);
    return this.webhook.send(url, secret, delivery.message, delivery.attempts);
  }

  /** A misconfigured key may be fixed by a redeploy, so it is retried (and dead-lettered when it is not). */
  private open(sealed: Buffer | null, context: string): string {
    if (!sealed) throw new DeliveryFailure('the contact has no URL', 'permanent');
    if (!this.box) throw new DeliveryFailure('ALERT_ENCRYPTION_KEY is not configured', 'retry');
    try {
      return this.box.open(sealed, context);
    } catch {
      throw new DeliveryFailure(
        'cannot decrypt the contact (is ALERT_ENCRYPTION_KEY the one it was saved with?)',
        'retry',
      );
    }
  }
}
