import type { Kafka } from 'kafkajs';
import { eventually } from './eventually';

/** Waits until a consumer group has committed every partition of a topic up to its high watermark. */
export async function waitForGroupCaughtUp(
  kafka: Kafka,
  groupId: string,
  topic: string,
  timeoutMs = 60_000,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await eventually(async () => {
      const ends = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      for (const end of ends) {
        const offset = committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? '-1';
        if (BigInt(end.high) === BigInt(end.low)) continue; // nothing to consume in this partition
        if (BigInt(offset) < BigInt(end.high)) {
          throw new Error(`group ${groupId} at ${offset} of ${end.high} on ${topic}[${end.partition}]`);
        }
      }
    }, timeoutMs);
  } finally {
    await admin.disconnect();
  }
}
