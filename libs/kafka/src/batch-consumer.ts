import { setTimeout as wait } from 'node:timers/promises';
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
import { DlqHeaders, UndecodableBatchHeaders } from '@agentmeter/contracts';
import { UNDECODABLE_BATCH_NONCE } from './codecs';
import { KafkaConsumerMetrics } from './consumer-metrics';

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface BatchHandler<T> {
  /** Decodes one message; a failure sends it to the dead-letter topic with the reason. */
  decode(message: KafkaMessage): Decoded<T>;
  /**
   * Writes a batch durably. Throwing leaves the offsets uncommitted, so the batch is redelivered. May
   * return items it refused (decodable but not acceptable), which are dead-lettered with their reason.
   */
  handle(items: T[]): Promise<void | Array<{ item: T; reason: string }>>;
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
  /**
   * How long the group waits for a silent (crashed) member before reassigning its partitions (default
   * 10 s): a member replacing a killed one works after about this long.
   */
  sessionTimeoutMs?: number;
  /** Heartbeat period (default 1 s), also kept up while a batch is being written. */
  heartbeatIntervalMs?: number;
  /**
   * How often the lag of this process's partitions is read from the broker (default 15 s), so it is
   * right while no batch arrives (a stuck or idle partition) and is not reported for partitions that a
   * rebalance moved away.
   */
  lagIntervalMs?: number;
  /** A member without a successful heartbeat for this long is reported down (default 5 heartbeats, at least 5 s). */
  staleAfterMs?: number;
  /** A member without a successful heartbeat for this long is recreated (default: a rebalance and a session timeout). */
  stallAfterMs?: number;
  /** First delay before recreating a failed member (default 500 ms), doubled per failure up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface BatchConsumerMetrics {
  onBatch(topic: string, partition: number, size: number, seconds: number): void;
  onDeadLetter(topic: string, reason: string): void;
  /** Messages behind the high watermark; null when the partition is no longer this process's. */
  onLag(topic: string, partition: number, lag: number | null): void;
}

/**
 * Bytes a fetch takes from one partition at most: the size of a batch when the partition has a backlog
 * (~2,000 events of ~500 B). Bounded so that a batch under load is written in a bounded time, which the
 * events behind it wait for; throughput was the same as with 4 MiB (docs/decisions.md "Freshness").
 */
export const MAX_BYTES_PER_PARTITION = 1024 * 1024;

/** Links of a batch span to the producers' traces beyond its parent (first message), at most this many. */
const MAX_SPAN_LINKS = 128;

const tracer = trace.getTracer('agentmeter-kafka');

const UTF8 = new TextDecoder('utf-8', { fatal: true });

type MemberState = 'starting' | 'joined' | 'rebalancing' | 'down' | 'stopped';
const MEMBER_STATES: readonly MemberState[] = ['starting', 'joined', 'rebalancing', 'down', 'stopped'];

/** One group member of this process: its current kafkajs consumer and what the supervisor knows of it. */
interface Member {
  index: number;
  consumer: Consumer | undefined;
  /** Increments with each recreated consumer: events of a replaced consumer are ignored. */
  generation: number;
  state: MemberState;
  /** Last successful heartbeat (or join): the proof that both the group membership and the loop live. */
  lastHeartbeat: number;
  assigned: number[];
  /** When this member's last batch was handed back to kafkajs (process.hrtime), for the fetch_wait stage. */
  lastBatchDone: bigint | undefined;
  /** The offset commit of this member's last batch, still travelling while the next fetch does. */
  committing: Promise<void> | undefined;
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
  reason: string;
}

/**
 * At-least-once batch consumption: decode, dead-letter what is invalid, write the rest with the
 * handler, and only then commit the offsets. Combined with idempotent writes that is exactly-once in
 * effect. Offsets are committed per batch, never automatically, so a crash redelivers at most the
 * batch in flight.
 *
 * Supervised: a member whose kafkajs consumer crashes (whatever kafkajs's own `restart` says), stops
 * without being asked to, or stops heartbeating (fetch loop gone, membership lost, broker unreachable)
 * is disconnected and recreated with exponential backoff. isRunning() is false while any member is
 * not in its group with a recent heartbeat, which the services' readiness reports.
 */
export class BatchConsumer<T> {
  private readonly members: Member[] = [];
  private producer: Producer | undefined;
  private admin: Admin | undefined;
  private stopping = false;
  private started = false;
  private reported = new Set<number>();
  private lagTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly shared = KafkaConsumerMetrics.get();
  private readonly sessionTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly staleAfterMs: number;
  private readonly stallAfterMs: number;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: BatchConsumerOptions,
    private readonly handler: BatchHandler<T>,
    private readonly logger: Logger,
    private readonly metrics?: BatchConsumerMetrics,
  ) {
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.min(1_000, Math.floor(this.sessionTimeoutMs / 5));
    this.staleAfterMs = options.staleAfterMs ?? Math.max(5_000, 5 * this.heartbeatIntervalMs);
    this.stallAfterMs =
      options.stallAfterMs ?? Math.max(3 * this.sessionTimeoutMs, this.rebalanceTimeoutMs() + this.sessionTimeoutMs);
  }

  async start(): Promise<void> {
    // Dead letters are at-least-once like everything else here; acks from all replicas (the default).
    this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await this.producer.connect();
    this.admin = this.kafka.admin();
    await this.admin.connect();
    for (let index = 0; index < (this.options.members ?? 1); index++) {
      const member: Member = {
        index,
        consumer: undefined,
        generation: 0,
        state: 'starting',
        lastHeartbeat: 0,
        assigned: [],
        lastBatchDone: undefined,
        committing: undefined,
        failures: 0,
        restartTimer: undefined,
        reason: 'starting',
      };
      this.members.push(member);
      this.setState(member, 'starting', 'starting');
    }
    // The first start fails loudly (wrong brokers, missing topic): the process does not come up.
    await Promise.all(this.members.map((member) => this.startMember(member)));
    this.started = true;
    this.lagTimer = setInterval(() => void this.sampleLag(), this.options.lagIntervalMs ?? 15_000).unref();
    this.watchdog = setInterval(() => this.checkStalls(), Math.min(1_000, this.heartbeatIntervalMs)).unref();
  }

  /** Leaves the group (kafkajs's disconnect sends LeaveGroup), so partitions move at once, not after a timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.lagTimer);
    clearInterval(this.watchdog);
    for (const member of this.members) clearTimeout(member.restartTimer);
    await Promise.all(
      this.members.map(async (member) => {
        // The last batch's offsets first (a batch in hand waits for its own: see onBatch).
        await member.committing;
        await member.consumer?.disconnect().catch(() => undefined);
        this.setState(member, 'stopped', 'stopped');
      }),
    );
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }

  /** True while every member of this process is in its group and heartbeating. */
  isRunning(): boolean {
    return this.started && !this.stopping && this.members.every((member) => this.isUp(member));
  }

  /** Why isRunning() is false, for readiness answers and logs. */
  describe(): string {
    return this.members
      .map((member) => `member ${member.index}: ${this.isUp(member) ? 'ok' : `${member.state} (${member.reason})`}`)
      .join('; ');
  }

  /**
   * Stops a member's kafkajs consumer as if its fetch loop had died (tests use it): the supervisor sees
   * the unexpected stop, reports the member down and recreates it.
   */
  async killFetchLoop(index = 0): Promise<void> {
    await this.members[index]?.consumer?.stop();
  }

  private rebalanceTimeoutMs(): number {
    return Math.max(this.sessionTimeoutMs, 30_000);
  }

  private isUp(member: Member): boolean {
    return member.state === 'joined' && Date.now() - member.lastHeartbeat < this.staleAfterMs;
  }

  private async startMember(member: Member): Promise<void> {
    const generation = ++member.generation;
    const consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: this.sessionTimeoutMs,
      rebalanceTimeout: this.rebalanceTimeoutMs(),
      heartbeatInterval: this.heartbeatIntervalMs,
      // A fetch returns as soon as a partition has data (minBytes 1): maxWaitTimeInMs is only how long an
      // idle partition's fetch waits at the broker, never a delay on new events (docs/decisions.md "Freshness").
      maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      maxWaitTimeInMs: 200,
      // The supervisor decides about restarts (kafkajs gives up on errors it deems not retriable).
      retry: { initialRetryTime: 200, retries: 5, restartOnFailure: async () => false },
    });
    member.consumer = consumer;
    member.assigned = [];
    member.lastBatchDone = undefined;
    member.committing = undefined;
    member.lastHeartbeat = Date.now(); // the stall watchdog counts from the start
    const replaced = () => member.generation !== generation;
    const current = () => !replaced() && !this.stopping;
    // A replaced consumer whose disconnect did not finish (stuck on an unreachable broker) may come back to
    // life when the broker does: any sign of it (a join, a heartbeat, a batch) disconnects it again.
    let retiring: Promise<void> | undefined;
    const retire = () => {
      retiring ??= consumer
        .disconnect()
        .catch(() => undefined)
        .finally(() => (retiring = undefined));
    };
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (replaced()) return retire();
      if (this.stopping) return;
      member.assigned = payload.memberAssignment[this.options.topic] ?? [];
      member.lastHeartbeat = Date.now();
      this.setState(member, 'joined', 'joined');
      void this.sampleLag();
    });
    consumer.on(consumer.events.HEARTBEAT, () => {
      if (replaced()) return retire();
      if (this.stopping) return;
      member.lastHeartbeat = Date.now();
      if (member.state === 'joined') member.failures = 0; // working again: the next failure backs off from the start
    });
    consumer.on(consumer.events.REBALANCING, () => {
      if (current()) this.setState(member, 'rebalancing', 'rebalancing');
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (current()) this.onFailure(member, generation, 'crash', payload.error);
    });
    consumer.on(consumer.events.STOP, () => {
      if (current()) this.onFailure(member, generation, 'stop', new Error('consumer stopped'));
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.options.topic, fromBeginning: this.options.fromBeginning ?? true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.options.partitionsConcurrently ?? 3,
        eachBatch: async (payload) => {
          if (replaced()) return retire();
          if (!this.stopping) await this.onBatch(member, generation, consumer, payload);
        },
      });
      // stop() ran meanwhile and could not see this consumer yet.
      if (this.stopping) await consumer.disconnect();
    } catch (error) {
      if (!this.started) throw error;
      this.onFailure(member, generation, 'start', error as Error);
    }
  }

  /** Disconnects a failed member's consumer and schedules a new one, with exponential backoff. */
  private onFailure(member: Member, generation: number, cause: string, error: Error): void {
    if (this.stopping || member.generation !== generation || member.state === 'down') return;
    const delay = Math.min(
      (this.options.initialBackoffMs ?? 500) * 2 ** member.failures,
      this.options.maxBackoffMs ?? 30_000,
    );
    member.failures++;
    this.setState(member, 'down', `${cause}: ${error.message}`);
    this.shared.restarts.inc({ group: this.options.groupId, topic: this.options.topic, cause });
    this.logger.error(
      { err: error, groupId: this.options.groupId, topic: this.options.topic, member: member.index, delay },
      `kafka consumer ${cause}; recreating it`,
    );
    const old = member.consumer;
    member.consumer = undefined;
    member.generation++; // events of the old consumer no longer count
    member.restartTimer = setTimeout(() => {
      void (async () => {
        // A consumer whose fetch loop hangs on an unreachable broker may never finish disconnecting: the
        // replacement does not wait for it longer than a session timeout (the group drops it by then).
        await Promise.race([
          old?.disconnect().catch(() => undefined),
          wait(this.sessionTimeoutMs, undefined, { ref: false }),
        ]);
        if (this.stopping) return;
        this.setState(member, 'starting', 'restarting');
        await this.startMember(member);
      })();
    }, delay);
  }

  /** A member in its group but without heartbeats for stallAfterMs has a dead fetch loop: recreate it. */
  private checkStalls(): void {
    const now = Date.now();
    for (const member of this.members) {
      this.shared.memberUp.set(this.labels(member), this.isUp(member) ? 1 : 0);
      if (member.state === 'down' || member.state === 'stopped' || !member.consumer) continue;
      const silent = now - member.lastHeartbeat;
      if (silent > this.stallAfterMs) {
        this.onFailure(member, member.generation, 'stall', new Error(`no heartbeat for ${silent} ms`));
      }
    }
  }

  private setState(member: Member, state: MemberState, reason: string): void {
    member.state = state;
    member.reason = reason;
    for (const each of MEMBER_STATES) {
      this.shared.memberState.set({ ...this.labels(member), state: each }, each === state ? 1 : 0);
    }
    this.shared.memberUp.set(this.labels(member), this.isUp(member) ? 1 : 0);
  }

  private labels(member: Member): { group: string; topic: string; member: string } {
    return { group: this.options.groupId, topic: this.options.topic, member: String(member.index) };
  }

  private reportLag(partition: number, lag: number | null): void {
    const labels = { group: this.options.groupId, topic: this.options.topic, partition: String(partition) };
    if (lag === null) this.shared.lag.remove(labels);
    else this.shared.lag.set(labels, Math.max(lag, 0)); // negative only while a truncated log is re-read
    this.metrics?.onLag(this.options.topic, partition, lag);
  }

  /**
   * Lag of the partitions this process owns: high watermark minus the group's committed offset (or the
   * low watermark when nothing is committed yet). Partitions it no longer owns stop being reported, so
   * the sum over processes counts each partition once.
   */
  private async sampleLag(): Promise<void> {
    if (!this.admin) return;
    const { topic, groupId } = this.options;
    const owned = new Set(this.members.flatMap((member) => (member.state === 'down' ? [] : member.assigned)));
    for (const partition of this.reported) if (!owned.has(partition)) this.reportLag(partition, null);
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
        this.reportLag(partition, Number(BigInt(high) - from));
      }
    } catch (error) {
      this.logger.debug({ err: error, topic }, 'lag sample failed; the next one retries');
    }
  }

  private async onBatch(
    member: Member,
    generation: number,
    consumer: Consumer,
    { batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload,
  ): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const started = process.hrtime.bigint();
    const stages = new StageClock(this.shared, this.options.groupId, batch.topic, started);
    if (member.lastBatchDone !== undefined) stages.observe('fetch_wait', member.lastBatchDone, started);
    const oldest = Number(batch.messages[0]!.timestamp);
    stages.age('fetched', oldest);
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
    let committed = false;
    // A slow write keeps the membership: heartbeats continue while the batch is processed.
    const beating = setInterval(
      () =>
        void heartbeat().catch((error: unknown) =>
          this.logger.debug({ err: error, topic: batch.topic }, 'heartbeat during a batch failed'),
        ),
      this.heartbeatIntervalMs,
    );
    try {
      await context.with(trace.setSpan(context.active(), span), async () => {
        const valid: T[] = [];
        const sources = new Map<T, KafkaMessage>();
        const dead: Array<{ message: KafkaMessage; reason: string }> = [];
        for (const message of batch.messages) {
          const decoded = this.handler.decode(withVerifiedMarker(message));
          if (decoded.ok) {
            valid.push(decoded.value);
            sources.set(decoded.value, message);
          } else dead.push({ message, reason: decoded.reason });
        }
        stages.next('decode');
        // Store first: if the write fails the batch is redelivered, and dead letters sent before a
        // failed write would be sent again.
        const refused = valid.length > 0 ? await this.handler.handle(valid) : undefined;
        stages.next('handle');
        for (const { item, reason } of refused ?? []) {
          const message = sources.get(item);
          if (message) dead.push({ message, reason });
        }
        dead.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
        if (dead.length > 0) {
          await this.deadLetter(batch.topic, batch.partition, dead);
          stages.next('dead_letter');
        }
      });
      const last = batch.messages[batch.messages.length - 1]!;
      resolveOffset(last.offset); // advances the fetch position; without it the batch is fetched again
      clearInterval(beating);
      const written = process.hrtime.bigint();
      const offsets = [
        { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
      ];
      // The offsets are committed after the write, while kafkajs fetches the next batch: one round trip less
      // per batch (docs/decisions.md "Freshness"). A member's commits go one after the other, so a batch's
      // offsets never land before an earlier batch's. A failed commit (a rebalance under way, the broker
      // gone) leaves the batch to be delivered again, to this member or the partition's next owner, and
      // written again idempotently, unless a later commit covers it; a member that cannot reach the broker
      // stops heartbeating and is recreated by the watchdog.
      const previous = member.committing;
      member.committing = (async () => {
        await previous;
        const sent = process.hrtime.bigint();
        await consumer.commitOffsets(offsets);
        const done = process.hrtime.bigint();
        stages.observe('commit', sent, done);
        stages.age('committed', oldest);
        this.shared.messages.inc({ group: this.options.groupId, topic: batch.topic }, batch.messages.length);
        this.metrics?.onBatch(batch.topic, batch.partition, batch.messages.length, Number(done - started) / 1e9);
      })().catch((error: unknown) => {
        if (member.generation !== generation) return;
        this.logger.warn(
          { err: error, topic: batch.topic, partition: batch.partition, offset: offsets[0]!.offset },
          'offset commit failed; the batch is delivered again unless a later commit covers it',
        );
      });
      member.lastBatchDone = written;
      this.reportLag(batch.partition, Number(batch.offsetLag()));
      committed = true;
      // Stopping: kafkajs leaves the group once this batch returns, so its offsets go first.
      if (this.stopping) await member.committing;
    } catch (error) {
      if (committed) throw error;
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      this.logger.error(
        { err: error, topic: batch.topic, partition: batch.partition },
        'batch failed; it will be redelivered',
      );
      throw error;
    } finally {
      clearInterval(beating);
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
      messages: dead.map(({ message, reason }) => {
        const { [UndecodableBatchHeaders.Marker]: _marker, ...headers } = message.headers ?? {};
        return {
          key: message.key,
          // Text is sanitized; bytes that are not UTF-8 (an undecodable batch, invalid_utf8) are kept raw.
          value:
            message.value && this.handler.sanitize && isUtf8(message.value)
              ? clean(message.value.toString('utf8'))
              : message.value,
          headers: {
            ...headers,
            [DlqHeaders.Reason]: reason.slice(0, 2000),
            [DlqHeaders.SourceTopic]: topic,
            [DlqHeaders.SourcePartition]: String(partition),
            [DlqHeaders.SourceOffset]: message.offset,
            [DlqHeaders.FailedAt]: failedAt,
          },
        };
      }),
    });
    for (const { message, reason } of dead) {
      const field = reason.split(':')[0] ?? 'invalid';
      this.logger.warn({ topic, partition, offset: message.offset, reason }, 'message dead-lettered');
      this.metrics?.onDeadLetter(topic, field);
      this.shared.deadLetters.inc({ group: this.options.groupId, topic, reason: field });
    }
  }
}

type BatchStage = 'fetch_wait' | 'decode' | 'handle' | 'dead_letter' | 'commit';

/** Times the stages of one batch into the shared histograms, each from the end of the one before. */
class StageClock {
  constructor(
    private readonly metrics: KafkaConsumerMetrics,
    private readonly group: string,
    private readonly topic: string,
    private last: bigint,
  ) {}

  /** Ends `stage` now; returns now (process.hrtime). */
  next(stage: BatchStage): bigint {
    const now = process.hrtime.bigint();
    this.observe(stage, this.last, now);
    this.last = now;
    return now;
  }

  observe(stage: BatchStage, from: bigint, to: bigint): void {
    this.metrics.batchStage.observe({ group: this.group, topic: this.topic, stage }, Number(to - from) / 1e9);
  }

  /** Age of a record with this Kafka timestamp (ms since the epoch, the producer's clock) now. */
  age(point: 'fetched' | 'committed', timestamp: number): void {
    if (!Number.isFinite(timestamp) || timestamp <= 0) return;
    const seconds = Math.max(0, Date.now() - timestamp) / 1000;
    this.metrics.recordAge.observe({ group: this.group, topic: this.topic, point }, seconds);
  }
}

function isUtf8(value: Buffer): boolean {
  try {
    UTF8.decode(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Keeps the undecodable-batch reason header only on records this process's codecs made (the marker holds
 * its secret), so a producer cannot pass a message off as one; the marker itself is dropped.
 */
function withVerifiedMarker(message: KafkaMessage): KafkaMessage {
  const headers = message.headers;
  if (
    !headers ||
    (headers[UndecodableBatchHeaders.Reason] === undefined && headers[UndecodableBatchHeaders.Marker] === undefined)
  ) {
    return message;
  }
  const { [UndecodableBatchHeaders.Marker]: marker, [UndecodableBatchHeaders.Reason]: reason, ...rest } = headers;
  const genuine = marker !== undefined && !Array.isArray(marker) && marker.toString() === UNDECODABLE_BATCH_NONCE;
  return { ...message, headers: genuine ? { ...rest, [UndecodableBatchHeaders.Reason]: reason } : rest };
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
