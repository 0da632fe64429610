import type { Kafka } from 'kafkajs';
import { ALL_TOPICS, topicName } from '@agentmeter/contracts';

/** Every AgentMeter topic under a benchmark's own prefix, as `make infra` creates them unprefixed. */
export async function createPrefixedTopics(kafka: Kafka, prefix: string, partitions = 3): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: ALL_TOPICS.map((topic) => ({
        topic: topicName(prefix, topic),
        numPartitions: partitions,
        replicationFactor: 1,
      })),
    });
  } finally {
    await admin.disconnect();
  }
}

/** Removes the topics a benchmark created under its prefix (and nothing else). */
export async function deletePrefixedTopics(kafka: Kafka, prefix: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
}
