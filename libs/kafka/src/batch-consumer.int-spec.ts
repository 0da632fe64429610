import type { Kafka } from 'kafkajs';
import { DlqHeaders, topicName, Topics } from '@agentmeter/contracts';
import { createLogger, metricsRegistry } from '@agentmeter/telemetry';
import {
  createTestTopics,
  eventually,
  publishRaw,
  readAll,
  testKafka,
  waitForGroupCaughtUp,
} from '@agentmeter/testing';
import { BatchConsumer, type BatchConsumerMetrics } from './batch-consumer';

/** Lag as the metrics see it: partition -> last value reported by one consumer process. */
function lagRecorder(): { metrics: BatchConsumerMetrics; lag: Map<number, number> } {
  const lag = new Map<number, number>();
  return {
    lag,
    metrics: {
      onBatch: () => undefined,
      onDeadLetter: () => undefined,
      onLag: (_topic, partition, value) => (value === null ? lag.delete(partition) : lag.set(partition, value)),
    },
  };
}

describe('BatchConsumer against Kafka', () => {
  let kafka: Kafka;
  const consumers: Array<BatchConsumer<string>> = [];
  const logger = createLogger('kafka-test', 'silent');

  beforeAll(() => {
    kafka = testKafka();
  });

  // Handlers a failed test left waiting are let go first: a consumer stops after its batch in flight.
  const gates: Array<() => void> = [];

  afterAll(async () => {
    for (const release of gates) release();
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });

  function consumer(
    topic: string,
    groupId: string,
    metrics: BatchConsumerMetrics,
    handle: (items: string[]) => Promise<void>,
  ): BatchConsumer<string> {
    const created = new BatchConsumer<string>(
      kafka,
      { groupId, topic, dlqTopic: `${topic}.dlq`, lagIntervalMs: 200, sessionTimeoutMs: 6_000 },
      { decode: (message) => ({ ok: true, value: message.value!.toString() }), handle },
      logger,
      metrics,
    );
    consumers.push(created);
    return created;
  }

  it('reports the lag of its partitions while no batch completes, and stops reporting partitions it lost', async () => {
    const prefix = await createTestTopics(kafka);
    const topic = topicName(prefix, Topics.AgentEvents);
    const groupId = `${prefix}lag`;
    await publishRaw(
      kafka,
      topic,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `m${i}` })),
    );
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    gates.push(release);
    const first = lagRecorder();
    await consumer(topic, groupId, first.metrics, () => gate).start();

    // Nothing committed yet: the sampled lag is everything published, over the three partitions.
    await eventually(async () => {
      expect([...first.lag.keys()].sort()).toEqual([0, 1, 2]);
      expect([...first.lag.values()].reduce((a, b) => a + b, 0)).toBe(30);
    });
    release();
    await waitForGroupCaughtUp(kafka, groupId, topic);
    await eventually(async () => expect([...first.lag.values()]).toEqual([0, 0, 0]));

    // A second process joins: each reports only what it owns, so every partition is counted once.
    const second = lagRecorder();
    await consumer(topic, groupId, second.metrics, async () => undefined).start();
    await eventually(async () => {
      const owned = [...first.lag.keys(), ...second.lag.keys()].sort();
      expect(owned).toEqual([0, 1, 2]);
      expect(first.lag.size).toBeGreaterThan(0);
      expect(second.lag.size).toBeGreaterThan(0);
    }, 30_000);
  });

  it('recreates a member whose fetch loop died: not running meanwhile, running and consuming after', async () => {
    const prefix = await createTestTopics(kafka);
    const topic = topicName(prefix, Topics.AgentEvents);
    const seen: string[] = [];
    const created = new BatchConsumer<string>(
      kafka,
      { groupId: `${prefix}supervised`, topic, dlqTopic: `${topic}.dlq`, sessionTimeoutMs: 6_000, members: 2 },
      {
        decode: (message) => ({ ok: true, value: message.value!.toString() }),
        handle: async (items) => void seen.push(...items),
      },
      logger,
    );
    consumers.push(created);
    await created.start();
    await eventually(async () => expect(created.isRunning()).toBe(true));
    await publishRaw(kafka, topic, [{ key: 'a', value: 'before' }]);
    await eventually(async () => expect(seen).toContain('before'));

    await created.killFetchLoop(1);
    expect(created.isRunning()).toBe(false);
    expect(created.describe()).toMatch(/member 1: (down|starting)/);

    await eventually(async () => expect(created.isRunning()).toBe(true), 60_000);
    await publishRaw(
      kafka,
      topic,
      Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: `after-${i}` })),
    );
    await eventually(async () => expect(seen.filter((v) => v.startsWith('after-')).sort()).toHaveLength(9), 60_000);
    const metrics = await metricsRegistry.getSingleMetric('agentmeter_kafka_consumer_restarts_total')!.get();
    expect(metrics.values.find((v) => v.labels.group === `${prefix}supervised`)?.value).toBe(1);
  });

  it('dead-letters what the handler refuses, in offset order with its reason', async () => {
    const prefix = await createTestTopics(kafka);
    const topic = topicName(prefix, Topics.AgentEvents);
    const dlq = topicName(prefix, Topics.AgentEventsDlq);
    const created = new BatchConsumer<{ v: string }>(
      kafka,
      { groupId: `${prefix}refusing`, topic, dlqTopic: dlq },
      {
        decode: (message) => ({ ok: true, value: { v: message.value!.toString() } }),
        handle: async (items) =>
          items.filter((item) => item.v.startsWith('bad')).map((item) => ({ item, reason: 'refused: no' })),
      },
      logger,
    );
    await created.start();
    try {
      await publishRaw(kafka, topic, [
        { key: 'same', value: 'good-1' },
        { key: 'same', value: 'bad-1' },
        { key: 'same', value: 'good-2' },
      ]);
      await waitForGroupCaughtUp(kafka, `${prefix}refusing`, topic);
      const dead = await readAll(kafka, dlq);
      expect(dead.map((d) => [d.value, d.headers[DlqHeaders.Reason]])).toEqual([['bad-1', 'refused: no']]);
    } finally {
      await created.stop();
    }
  });

  it('leaves its group on stop, so the group does not wait for a session timeout', async () => {
    const prefix = await createTestTopics(kafka);
    const topic = topicName(prefix, Topics.AgentEvents);
    const groupId = `${prefix}leaving`;
    const created = new BatchConsumer<string>(
      kafka,
      { groupId, topic, dlqTopic: `${topic}.dlq`, sessionTimeoutMs: 60_000 },
      { decode: (message) => ({ ok: true, value: message.value!.toString() }), handle: async () => undefined },
      logger,
    );
    await created.start();
    const admin = kafka.admin();
    await admin.connect();
    try {
      await eventually(async () => {
        const { groups } = await admin.describeGroups([groupId]);
        expect(groups[0]!.members).toHaveLength(1);
      });
      await created.stop();
      // With a 60 s session timeout, an empty group right after stop() can only come from LeaveGroup.
      const { groups } = await admin.describeGroups([groupId]);
      expect(groups[0]!.state).toBe('Empty');
      expect(groups[0]!.members).toHaveLength(0);
    } finally {
      await admin.disconnect();
    }
  });
});
