import {
  Inject,
  Injectable,
  type OnApplicationShutdown,
  type OnModuleInit,
  ServiceUnavailableException,
} from '@nestjs/common';
import { Partitioners, type Message, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { topicName, Topics, type AgentEvent } from '@agentmeter/contracts';
import { createKafka } from '@agentmeter/kafka';
import { IngestConfig } from '../config';
import { LOGGER } from '../logger';

export interface KeyedEvent {
  /** The run id: one run stays in one partition, in order. */
  key: string;
  event: AgentEvent;
}

/** Below the broker's default message.max.bytes (1 MiB), which bounds one partition's batch in a request. */
const MAX_SEND_BYTES = 512 * 1024;

/**
 * Publishes the events made from OTLP spans to agent.events.v1, where the normal ingest path stores them
 * exactly once. publish() resolves only when Kafka acknowledged every event (acks from all in-sync replicas).
 */
@Injectable()
export class OtlpPublisher implements OnModuleInit, OnApplicationShutdown {
  private readonly producer: Producer;
  private readonly topic: string;

  constructor(
    @Inject(IngestConfig) config: IngestConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    const kafka = createKafka(
      { brokers: config.KAFKA_BROKERS, clientId: 'agentmeter-ingest-otlp', topicPrefix: config.KAFKA_TOPIC_PREFIX },
      logger,
    );
    // kafkajs warns that the client's bounded retries "may invalidate EoS guarantees": bounded on purpose, so
    // an unreachable broker fails the HTTP request (503, which OTLP exporters retry) instead of holding it
    // forever. A retried export is deduplicated by the events' (source, id), not by the idempotent producer.
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.topic = topicName(config.KAFKA_TOPIC_PREFIX, Topics.AgentEvents);
  }

  async onModuleInit(): Promise<void> {
    await this.producer.connect();
  }

  // After the HTTP server has closed (unlike onModuleDestroy), so requests in flight can still be acknowledged.
  async onApplicationShutdown(): Promise<void> {
    await this.producer.disconnect();
  }

  async publish(events: readonly KeyedEvent[]): Promise<void> {
    try {
      for (const messages of chunks(events.map(toMessage))) {
        await this.producer.send({ topic: this.topic, acks: -1, messages });
      }
    } catch (error) {
      this.logger.warn({ err: error, topic: this.topic }, 'Kafka did not acknowledge OTLP events');
      throw new ServiceUnavailableException('Kafka did not acknowledge the spans; retry the export', {
        cause: error,
      });
    }
  }
}

function toMessage({ key, event }: KeyedEvent): Message & { value: string } {
  return {
    key,
    value: JSON.stringify(event),
    headers: { 'content-type': 'application/cloudevents+json; charset=UTF-8' },
  };
}

function* chunks(messages: Array<Message & { value: string }>): Generator<Message[]> {
  let chunk: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = Buffer.byteLength(message.value) + 200;
    if (chunk.length > 0 && bytes + size > MAX_SEND_BYTES) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(message);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}
