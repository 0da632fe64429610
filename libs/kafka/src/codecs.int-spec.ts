import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CompressionTypes, Partitioners, type Kafka } from 'kafkajs';
import { topicName, Topics } from '@agentmeter/contracts';
import { createLogger, metricsRegistry } from '@agentmeter/telemetry';
import { createTestTopics, eventually, testEnvironment, testKafka } from '@agentmeter/testing';
import { BatchConsumer } from './batch-consumer';

const run = promisify(execFile);

/** Publishes with kcat (librdkafka), as producers outside this repository do. */
export async function kcatPublish(brokers: string[], topic: string, codec: string, lines: string[]): Promise<void> {
  const child = run('kcat', ['-P', '-b', brokers.join(','), '-t', topic, '-z', codec, '-K', '\t', '-X', 'acks=all'], {
    timeout: 60_000,
  });
  child.child.stdin!.end(lines.map((line) => `${line}\n`).join(''));
  await child;
}

describe('Kafka codecs', () => {
  let kafka: Kafka;
  const consumers: Array<BatchConsumer<string>> = [];
  const logger = createLogger('kafka-test', 'silent');

  beforeAll(() => {
    kafka = testKafka();
  });

  afterAll(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });

  it('reads every codec Kafka defines, as kcat (librdkafka) and kafkajs write them', async () => {
    const prefix = await createTestTopics(kafka);
    const topic = topicName(prefix, Topics.AgentEvents);
    const expected: string[] = [];
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
      const values = Array.from({ length: 20 }, (_, i) => `kcat-${codec}-${i}`);
      expected.push(...values);
      await kcatPublish(
        testEnvironment().kafkaBrokers,
        topic,
        codec,
        values.map((v, i) => `run-${i % 3}\t${v}`),
      );
    }
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (const [name, compression] of Object.entries({
      gzip: CompressionTypes.GZIP,
      snappy: CompressionTypes.Snappy,
      lz4: CompressionTypes.LZ4,
      zstd: CompressionTypes.ZSTD,
    })) {
      const values = Array.from({ length: 20 }, (_, i) => `kafkajs-${name}-${i}`);
      expected.push(...values);
      await producer.send({
        topic,
        compression,
        acks: -1,
        messages: values.map((value, i) => ({ key: `run-${i % 3}`, value })),
      });
    }
    await producer.disconnect();

    const seen: string[] = [];
    const consumer = new BatchConsumer<string>(
      kafka,
      { groupId: `${prefix}codecs`, topic, dlqTopic: topicName(prefix, Topics.AgentEventsDlq) },
      {
        decode: (message) => ({ ok: true, value: message.value!.toString() }),
        handle: async (items) => void seen.push(...items),
      },
      logger,
    );
    consumers.push(consumer);
    await consumer.start();
    await eventually(async () => expect([...seen].sort()).toEqual([...expected].sort()), 60_000);
    // Nothing crashed on the way (a crash would have been recreated and counted).
    const restarts = await metricsRegistry.getSingleMetric('agentmeter_kafka_consumer_restarts_total')!.get();
    expect(restarts.values.filter((v) => v.labels.group === `${prefix}codecs`)).toEqual([]);
  });
});
