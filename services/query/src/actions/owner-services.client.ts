import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Partitioners, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import {
  type AuditedRequest,
  type ControlCommand,
  type PutCapsRequest,
  type RaiseRequest,
  topicName,
  Topics,
} from '@agentmeter/contracts';
import type { z } from 'zod';
import { controlMessage, createKafka } from '@agentmeter/kafka';
import { QueryConfig } from '../config';
import { UnavailableError, UpstreamFailedError } from '../errors/problems';
import { LOGGER } from '../logger';

export interface UpstreamAnswer {
  status: number;
  body: unknown;
}

/** One JSON call to an owning service, with its bearer token and a time budget; non-2xx is a failure. */
async function call(
  service: string,
  baseUrl: string | undefined,
  token: string | undefined,
  method: 'POST' | 'PUT' | 'DELETE',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<UpstreamAnswer> {
  if (!baseUrl)
    throw new UnavailableError(`${service} is not configured (${service.toUpperCase().replace('-', '_')}_URL)`);
  let response: Response;
  try {
    response = await fetch(new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`), {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new UpstreamFailedError(`${service} did not answer: ${(error as Error).message}`, null);
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep the text
  }
  if (!response.ok) {
    const detail = (parsed as { detail?: unknown })?.detail;
    throw new UpstreamFailedError(
      `${service} answered ${response.status}${typeof detail === 'string' ? `: ${detail}` : ''}`,
      response.status,
    );
  }
  return { status: response.status, body: parsed };
}

/**
 * cost-cap's override API (docs/cost-cap.md "HTTP API"). Paths are relative to COST_CAP_URL;
 * docs/query.md lists them as the contract this client is written against.
 */
@Injectable()
export class CostCapClient {
  constructor(@Inject(QueryConfig) private readonly config: QueryConfig) {}

  pauseTenant(tenantId: string, body: AuditedRequest): Promise<UpstreamAnswer> {
    return this.send('POST', `v1/tenants/${encodeURIComponent(tenantId)}/pause`, body);
  }

  unpauseTenant(tenantId: string, body: AuditedRequest): Promise<UpstreamAnswer> {
    return this.send('POST', `v1/tenants/${encodeURIComponent(tenantId)}/unpause`, body);
  }

  /** A temporary raise (72 h by default). */
  raise(tenantId: string, body: z.input<typeof RaiseRequest>): Promise<UpstreamAnswer> {
    return this.send('POST', `v1/tenants/${encodeURIComponent(tenantId)}/overrides`, body);
  }

  /** A permanent change of the tenant's (or a project's) caps. */
  putCaps(tenantId: string, body: z.input<typeof PutCapsRequest>): Promise<UpstreamAnswer> {
    return this.send('PUT', `v1/tenants/${encodeURIComponent(tenantId)}/caps`, body);
  }

  private send(method: 'POST' | 'PUT', path: string, body: unknown): Promise<UpstreamAnswer> {
    const c = this.config;
    return call('cost-cap', c.COST_CAP_URL, c.COST_CAP_API_TOKEN, method, path, body, c.ACTION_TIMEOUT_MS);
  }
}

/** The alert service's admin API for mutes (libs/contracts alerts.ts CreateMuteBody). */
@Injectable()
export class AlertClient {
  constructor(@Inject(QueryConfig) private readonly config: QueryConfig) {}

  mute(body: { tenant_id: string; rule?: string; starts_at?: string; ends_at: string; actor: string; reason: string }) {
    const c = this.config;
    return call('alert', c.ALERT_URL, c.ALERT_API_TOKEN, 'POST', 'admin/mutes', body, c.ACTION_TIMEOUT_MS);
  }

  unmute(muteId: string, body: { tenant_id: string; actor: string; reason: string }) {
    const c = this.config;
    const path = `admin/mutes/${encodeURIComponent(muteId)}`;
    return call('alert', c.ALERT_URL, c.ALERT_API_TOKEN, 'DELETE', path, body, c.ACTION_TIMEOUT_MS);
  }
}

/** Commands to the Coordinator on agent.control.v1, keyed by tenant id (one tenant's commands stay in order). */
@Injectable()
export class CoordinatorPublisher implements OnApplicationShutdown {
  private producer: Promise<Producer> | null = null;

  constructor(
    @Inject(QueryConfig) private readonly config: QueryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async send(command: ControlCommand): Promise<UpstreamAnswer> {
    const producer = await this.connected();
    const topic = topicName(this.config.KAFKA_TOPIC_PREFIX, Topics.Control);
    try {
      const [meta] = await producer.send({
        topic,
        acks: -1,
        messages: [controlMessage(command)],
      });
      return { status: 202, body: { topic, partition: meta?.partition, offset: meta?.baseOffset } };
    } catch (error) {
      throw new UpstreamFailedError(`the control topic refused the command: ${(error as Error).message}`, null);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    const producer = this.producer;
    this.producer = null;
    if (producer) await (await producer.catch(() => null))?.disconnect();
  }

  /** Connects on the first command, so the query API starts and serves reads without Kafka. */
  private connected(): Promise<Producer> {
    this.producer ??= (async () => {
      const kafka = createKafka(
        {
          brokers: this.config.KAFKA_BROKERS,
          clientId: 'agentmeter-query',
          topicPrefix: this.config.KAFKA_TOPIC_PREFIX,
        },
        this.logger,
      );
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      return producer;
    })().catch((error: unknown) => {
      this.producer = null;
      throw new UpstreamFailedError(`Kafka is not reachable: ${(error as Error).message}`, null);
    });
    return this.producer;
  }
}
