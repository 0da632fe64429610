import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  Partitioners,
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  type Producer,
} from 'kafkajs';
import type { Logger } from 'pino';
import { DlqHeaders } from '@agentmeter/contracts';

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface BatchHandler<T> {
  /** Decodes one message; a failure sends it to the dead-letter topic with the reason. */
  decode(message: KafkaMessage): Decoded<T>;
  /** Writes a batch durably. Throwing leaves the offsets uncommitted, so the batch is redelivered. */
  handle(items: T[]): Promise<void>;
  /** Cleans what is forwarded to the dead-letter topic and logged (e.g. redacts secrets). */
  sanitize?(text: string): string;
}

export interface BatchConsumerOptions {
  groupId: string;
  topic: string;
  dlqTopic: string;
  /** Partitions processed at once by each group member. */
  partitionsConcurrently?: number;
  /**
   * Group members this process runs (default 1). A member fetches for all its partitions and waits for
   * every batch of that fetch before fetching again, so its partitions wait for the slowest batch and
   * nothing is written while it fetches. Members fetch and write independently of each other: with
   * one partition at a time each, one member's fetch and decoding overlap another's database work.
   */
  members?: number;
  fromBeginning?: boolean;
  /** How long the group waits for a silent (crashed) member before reassigning its partitions. */
  sessionTimeoutMs?: number;
}

export interface BatchConsumerMetrics {
  onBatch(topic: string, partition: number, size: number, seconds: number): void;
  onDeadLetter(topic: string, reason: string): void;
  onLag(topic: string, partition: number, lag: number): void;
}

const tracer = trace.getTracer('agentmeter-kafka');

/**
 * At-least-once batch consumption: decode, dead-letter what is invalid, write the rest with the
 * handler, and only then commit the offsets. Combined with idempotent writes that is exactly-once in
 * effect. Offsets are committed per batch, never automatically, so a crash redelivers at most the
 * batch in flight.
 */
export class BatchConsumer<T> {
  private readonly consumers: Consumer[] = [];
  private producer: Producer | undefined;
  private running = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: BatchConsumerOptions,
    private readonly handler: BatchHandler<T>,
    private readonly logger: Logger,
    private readonly metrics?: BatchConsumerMetrics,
  ) {}

  async start(): Promise<void> {
    // Dead letters are at-least-once like everything else here; acks from all replicas (the default).
    this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await this.producer.connect();
    for (let i = 0; i < (this.options.members ?? 1); i++) {
      const consumer = this.kafka.consumer({
        groupId: this.options.groupId,
        sessionTimeout: this.options.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: 3_000,
        maxBytesPerPartition: 4 * 1024 * 1024,
        maxWaitTimeInMs: 200,
      });
      this.consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic: this.options.topic, fromBeginning: this.options.fromBeginning ?? true });
    }
    await Promise.all(
      this.consumers.map((consumer) =>
        consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.options.partitionsConcurrently ?? 3,
          eachBatch: (payload) => this.onBatch(consumer, payload),
        }),
      ),
    );
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.consumers.map((consumer) => consumer.disconnect()));
    await this.producer?.disconnect();
  }

  /** True once the consumer has joined its group and is running. */
  isRunning(): boolean {
    return this.running;
  }

  private async onBatch(
    consumer: Consumer,
    { batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload,
  ): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const started = process.hrtime.bigint();
    const parent = propagation.extract(context.active(), headersOf(batch.messages[0]!));
    const span = tracer.startSpan(
      `${batch.topic} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': batch.topic,
          'messaging.batch.message_count': batch.messages.length,
          'messaging.kafka.destination.partition': batch.partition,
        },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(context.active(), span), async () => {
        const valid: T[] = [];
        const dead: Array<{ message: KafkaMessage; reason: string }> = [];
        for (const message of batch.messages) {
          const decoded = this.handler.decode(message);
          if (decoded.ok) valid.push(decoded.value);
          else dead.push({ message, reason: decoded.reason });
        }
        // Store first: if the write fails the batch is redelivered, and dead letters sent before a
        // failed write would be sent again.
        if (valid.length > 0) await this.handler.handle(valid);
        if (dead.length > 0) await this.deadLetter(batch.topic, batch.partition, dead);
      });
      const last = batch.messages[batch.messages.length - 1]!;
      resolveOffset(last.offset); // advances the fetch position; without it the batch is fetched again
      await consumer.commitOffsets([
        { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
      ]);
      await heartbeat();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics?.onBatch(batch.topic, batch.partition, batch.messages.length, seconds);
      this.metrics?.onLag(batch.topic, batch.partition, Number(batch.offsetLag()));
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      this.logger.error(
        { err: error, topic: batch.topic, partition: batch.partition },
        'batch failed; it will be redelivered',
      );
      throw error;
    } finally {
      span.end();
    }
  }

  private async deadLetter(
    topic: string,
    partition: number,
    dead: Array<{ message: KafkaMessage; reason: string }>,
  ): Promise<void> {
    const failedAt = new Date().toISOString();
    const clean = (text: string) => (this.handler.sanitize ? this.handler.sanitize(text) : text);
    dead = dead.map(({ message, reason }) => ({ message, reason: clean(reason) }));
    await this.producer!.send({
      topic: this.options.dlqTopic,
      messages: dead.map(({ message, reason }) => ({
        key: message.key,
        value: message.value && this.handler.sanitize ? clean(message.value.toString('utf8')) : message.value,
        headers: {
          ...message.headers,
          [DlqHeaders.Reason]: reason.slice(0, 2000),
          [DlqHeaders.SourceTopic]: topic,
          [DlqHeaders.SourcePartition]: String(partition),
          [DlqHeaders.SourceOffset]: message.offset,
          [DlqHeaders.FailedAt]: failedAt,
        },
      })),
    });
    for (const { message, reason } of dead) {
      this.logger.warn({ topic, partition, offset: message.offset, reason }, 'message dead-lettered');
      this.metrics?.onDeadLetter(topic, reason.split(':')[0] ?? 'invalid');
    }
  }
}

function headersOf(message: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[key] = first.toString();
  }
  return out;
}
