import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type IHeaders } from 'kafkajs';
// Every Kafka codec on kafkajs, to read what kcat and other clients write. The module alone: the package's
// index brings Nest controllers, which the browser tests' loader (web/e2e) cannot compile.
import '../../kafka/src/codecs';
import '../../kafka/src/kafkajs-patches';
import { ALL_TOPICS, topicName } from '@agentmeter/contracts';
import { testEnvironment } from './environment';
import { eventually } from './eventually';

// Kept in a file of its own (no codec import), so the console's Playwright set-up can load it.
export { waitForGroupCaughtUp } from './consumer-lag';

export function testKafka(): Kafka {
  return new Kafka({ clientId: 'agentmeter-tests', brokers: testEnvironment().kafkaBrokers, logLevel: logLevel.ERROR });
}

/**
 * Topics of their own for one test file (under the run's prefix, so the run's teardown removes them):
 * a consumer reading from the beginning then sees only what this file published.
 */
export async function createTestTopics(kafka: Kafka, partitions = 3): Promise<string> {
  const prefix = `${testEnvironment().topicPrefix}${randomBytes(3).toString('hex')}.`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = ALL_TOPICS.map((topic) => topicName(prefix, topic));
    // Not waitForLeaders: on a broker busy with other runs' topics, its metadata request can answer
    // UNKNOWN_TOPIC_OR_PARTITION for a topic just created, which kafkajs does not retry. Waited for here.
    await admin.createTopics({
      waitForLeaders: false,
      topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
    });
    await eventually(async () => {
      const { topics: found } = await admin.fetchTopicMetadata({ topics });
      const led = found.filter((t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0));
      if (led.length !== topics.length) throw new Error(`topics of ${prefix} not led yet`);
    }, 30_000);
  } finally {
    await admin.disconnect();
  }
  return prefix;
}

export interface ReadMessage {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

/** Reads every message currently in a topic (up to the high watermarks at call time). */
export async function readAll(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const expected = ends.reduce((sum, p) => sum + Number(BigInt(p.high) - BigInt(p.low)), 0);
  const messages: ReadMessage[] = [];
  if (expected === 0) return messages;
  const consumer = kafka.consumer({ groupId: `${testEnvironment().runId}-reader-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${messages.length} of ${expected} messages from ${topic}`)),
        timeoutMs,
      );
      void consumer.run({
        eachMessage: async ({ message, partition }) => {
          messages.push({
            key: message.key?.toString() ?? null,
            value: message.value?.toString() ?? null,
            headers: decodeHeaders(message.headers),
            partition,
            offset: message.offset,
          });
          if (messages.length >= expected) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[key] = first.toString();
  }
  return out;
}
