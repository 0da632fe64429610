// Jest loads global setup/teardown without moduleNameMapper, hence relative imports of the libs.
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { dropDatabase, listDatabases } from '../../database/src';
import { hasTestEnvironment, testEnvironment } from './environment';
import { withDatabase } from './global-setup';
import { stopContainers } from './containers';

/** Removes every database, topic and Redis key this run created. */
export default async function globalTeardown(): Promise<void> {
  if (!hasTestEnvironment()) return;
  const env = testEnvironment();
  if (process.env.AGENTMETER_TEST_TORN_DOWN === env.runId) return;
  process.env.AGENTMETER_TEST_TORN_DOWN = env.runId;

  for (const name of await listDatabases(env.databaseUrl, `am_${env.runId}`)) {
    await dropDatabase(withDatabase(env.databaseUrl, name));
  }
  const admin = new Kafka({
    clientId: 'agentmeter-tests',
    brokers: env.kafkaBrokers,
    logLevel: logLevel.ERROR,
  }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((topic) => topic.startsWith(env.topicPrefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(env.runId));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
  const redis = new Redis(env.redisUrl, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.redisPrefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  await stopContainers();
}
