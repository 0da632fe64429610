import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { createTransport, type Transporter } from 'nodemailer';
import type { AlertMessage } from '@agentmeter/contracts';
import { smtpVerdict } from '@agentmeter/domain';
import { WorkerConfig } from '../config';
import { DeliveryFailure } from './delivery-failure';

/**
 * E-mail through SMTP with nodemailer (always available). The Message-ID is the delivery id, so a repeat
 * after a crash mid-send is recognisable as the same message by mail clients and filters.
 */
@Injectable()
export class EmailSender implements OnApplicationShutdown {
  private readonly transport: Transporter;

  constructor(@Inject(WorkerConfig) private readonly config: WorkerConfig) {
    const timeout = config.ALERT_DELIVERY_TIMEOUT_MS;
    this.transport = createTransport({
      url: config.SMTP_URL,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    } as Parameters<typeof createTransport>[0]);
  }

  async send(to: string, message: AlertMessage): Promise<{ statusCode: number | null }> {
    try {
      await this.transport.sendMail({
        from: this.config.ALERT_SMTP_FROM,
        to,
        subject: message.subject,
        text: message.text,
        messageId: `<${message.delivery_id}@agentmeter>`,
        headers: { 'X-AgentMeter-Delivery': message.delivery_id, 'X-AgentMeter-Rule': message.rule },
      });
      return { statusCode: 250 };
    } catch (error) {
      const smtp = error as { responseCode?: number; code?: string; message?: string };
      throw new DeliveryFailure(
        `SMTP ${smtp.responseCode ?? smtp.code ?? 'error'}: ${smtp.message ?? String(error)}`,
        smtpVerdict(smtp),
        smtp.responseCode ?? null,
      );
    }
  }

  onApplicationShutdown(): void {
    this.transport.close();
  }
}
