import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '@agentmeter/telemetry';

/**
 * Metrics every BatchConsumer exports, whatever the service (names are part of the alert rules'
 * contract, deploy/observability/rules/agentmeter.rules.yml). Created once per process.
 */
export class KafkaConsumerMetrics {
  private static instance: KafkaConsumerMetrics | undefined;

  static get(): KafkaConsumerMetrics {
    return (KafkaConsumerMetrics.instance ??= new KafkaConsumerMetrics());
  }

  readonly lag = new Gauge({
    name: 'agentmeter_kafka_consumer_lag',
    help: 'Messages behind the high watermark, for the partitions this process owns (sampled every 15 s and after each batch).',
    labelNames: ['group', 'topic', 'partition'] as const,
    registers: [metricsRegistry],
  });
  readonly memberUp = new Gauge({
    name: 'agentmeter_kafka_consumer_member_up',
    help: 'One per group member of this process: 1 while it is in its group and its fetch loop heartbeats, else 0.',
    labelNames: ['group', 'topic', 'member'] as const,
    registers: [metricsRegistry],
  });
  readonly memberState = new Gauge({
    name: 'agentmeter_kafka_consumer_member_state',
    help: 'Group member state (1 for the current one): starting, joined, rebalancing, down, stopped.',
    labelNames: ['group', 'topic', 'member', 'state'] as const,
    registers: [metricsRegistry],
  });
  readonly restarts = new Counter({
    name: 'agentmeter_kafka_consumer_restarts_total',
    help: 'Group members recreated after a crash, an unexpected stop or a stalled fetch loop, by cause.',
    labelNames: ['group', 'topic', 'cause'] as const,
    registers: [metricsRegistry],
  });
  readonly messages = new Counter({
    name: 'agentmeter_kafka_consumer_messages_total',
    help: 'Messages whose offsets were committed (stored, skipped or dead-lettered).',
    labelNames: ['group', 'topic'] as const,
    registers: [metricsRegistry],
  });
  readonly deadLetters = new Counter({
    name: 'agentmeter_kafka_consumer_dead_letters_total',
    help: 'Messages sent to the dead-letter topic, by reason field.',
    labelNames: ['group', 'topic', 'reason'] as const,
    registers: [metricsRegistry],
  });
  readonly batchStage = new Histogram({
    name: 'agentmeter_kafka_consumer_batch_stage_seconds',
    help:
      "Time of each stage of a batch: fetch_wait (from the member's previous batch committed to this one handed over: " +
      "the fetch, or idle time), decode, handle (the service's write), dead_letter, commit (offsets).",
    labelNames: ['group', 'topic', 'stage'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metricsRegistry],
  });
  readonly recordAge = new Histogram({
    name: 'agentmeter_kafka_consumer_record_age_seconds',
    help:
      "Age of a batch's oldest record (now minus its Kafka timestamp) when the batch is handed over (fetched) and when " +
      'its offsets are committed (committed): how long events wait before and until they are stored.',
    labelNames: ['group', 'topic', 'point'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [metricsRegistry],
  });
}
