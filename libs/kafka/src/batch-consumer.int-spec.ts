import type { Kafka } from 'kafkajs';
import { topicName, Topics } from '@agentmeter/contracts';
import { createLogger } from '@agentmeter/telemetry';
import { createTestTopics, eventually, publishRaw, testKafka, waitForGroupCaughtUp } from '@agentmeter/testing';
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

  afterAll(async () => {
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
});
