import { context, propagation, SpanKind, SpanStatusCode, trace, type Link } from '@opentelemetry/api';
import {
  Partitioners,
  type Admin,
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
  /**
   * How often the lag of this process's partitions is read from the broker (default 15 s), so it is
   * right while no batch arrives (a stuck or idle partition) and is not reported for partitions that a
   * rebalance moved away.
   */
  lagIntervalMs?: number;
}

export interface BatchConsumerMetrics {
  onBatch(topic: string, partition: number, size: number, seconds: number): void;
  onDeadLetter(topic: string, reason: string): void;
  /** Messages behind the high watermark; null when the partition is no longer this process's. */
  onLag(topic: string, partition: number, lag: number | null): void;
}

/** Links of a batch span to the producers' traces beyond its parent (first message), at most this many. */
const MAX_SPAN_LINKS = 128;

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
  private admin: Admin | undefined;
  private running = false;
  /** Partitions assigned to each member of this process, from its latest group join. */
  private readonly assigned = new Map<Consumer, number[]>();
  private reported = new Set<number>();
  private lagTimer: NodeJS.Timeout | undefined;

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
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        this.assigned.set(consumer, payload.memberAssignment[this.options.topic] ?? []);
        void this.sampleLag();
      });
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
    if (this.metrics) {
      this.admin = this.kafka.admin();
      await this.admin.connect();
      this.lagTimer = setInterval(() => void this.sampleLag(), this.options.lagIntervalMs ?? 15_000).unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.lagTimer);
    await Promise.all(this.consumers.map((consumer) => consumer.disconnect()));
    await this.producer?.disconnect();
    await this.admin?.disconnect();
  }

  /**
   * Lag of the partitions this process owns: high watermark minus the group's committed offset (or the
   * low watermark when nothing is committed yet). Partitions it no longer owns stop being reported, so
   * the sum over processes counts each partition once.
   */
  private async sampleLag(): Promise<void> {
    if (!this.admin || !this.metrics) return;
    const { topic, groupId } = this.options;
    const owned = new Set([...this.assigned.values()].flat());
    for (const partition of this.reported) if (!owned.has(partition)) this.metrics.onLag(topic, partition, null);
    this.reported = owned;
    if (owned.size === 0) return;
    try {
      const [watermarks, [committed]] = await Promise.all([
        this.admin.fetchTopicOffsets(topic),
        this.admin.fetchOffsets({ groupId, topics: [topic] }),
      ]);
      const committedOf = new Map(committed?.partitions.map((p) => [p.partition, BigInt(p.offset)]) ?? []);
      for (const { partition, high, low } of watermarks) {
        if (!this.reported.has(partition)) continue;
        const done = committedOf.get(partition) ?? -1n;
        const from = done < 0n ? BigInt(low) : done;
        this.metrics.onLag(topic, partition, Number(BigInt(high) - from));
      }
    } catch (error) {
      this.logger.debug({ err: error, topic }, 'lag sample failed; the next one retries');
    }
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
        links: linksOf(batch.messages, parent),
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

/**
 * One span processes the whole batch: it continues the first message's trace and links the other
 * producers' traces (OpenTelemetry messaging conventions for batch receives), one link per trace.
 */
function linksOf(messages: KafkaMessage[], parent: ReturnType<typeof context.active>): Link[] {
  const first = trace.getSpanContext(parent)?.traceId;
  const links = new Map<string, Link>();
  for (const message of messages) {
    if (links.size >= MAX_SPAN_LINKS) break;
    if (!message.headers?.traceparent) continue;
    const spanContext = trace.getSpanContext(propagation.extract(context.active(), headersOf(message)));
    if (spanContext && spanContext.traceId !== first && !links.has(spanContext.traceId)) {
      links.set(spanContext.traceId, { context: spanContext });
    }
  }
  return [...links.values()];
}

function headersOf(message: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[key] = first.toString();
  }
  return out;
}
