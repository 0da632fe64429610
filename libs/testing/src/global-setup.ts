// Jest loads global setup/teardown without moduleNameMapper, hence relative imports of the libs.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { ALL_TOPICS, topicName } from '../../contracts/src';
import { ensureDatabase, migrate } from '../../database/src';
import { dockerAvailable, hasTestEnvironment, saveTestEnvironment, type TestEnvironment } from './environment';
import { startContainers } from './containers';

/**
 * Once per test run: find the services (the KAFKA_BROKERS, DATABASE_URL and REDIS_URL of the
 * environment, or containers when Docker is present), migrate a template database, and create this
 * run's topics. Everything this run creates is named after its run id and removed by the teardown.
 */
export default async function globalSetup(): Promise<void> {
  if (hasTestEnvironment()) return; // integration and e2e projects share one setup per jest process
  const runId = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  let { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, KAFKA_BROKERS: brokers } = process.env;
  if (!databaseUrl || !redisUrl || !brokers) {
    if (!dockerAvailable()) {
      throw new Error(
        'Integration tests need PostgreSQL, Redis and Kafka. Run `make infra` and set DATABASE_URL, REDIS_URL and ' +
          'KAFKA_BROKERS (make test does both), or install Docker so testcontainers can start them.',
      );
    }
    ({ databaseUrl, redisUrl, brokers } = await startContainers());
  }
  const templateDatabase = `am_${runId}_tpl`;
  const templateUrl = withDatabase(databaseUrl, templateDatabase);
  await ensureDatabase(templateUrl);
  await migrate(templateUrl);

  const env: TestEnvironment = {
    runId,
    databaseUrl,
    templateDatabase,
    redisUrl,
    redisPrefix: `${runId}:`,
    kafkaBrokers: brokers.split(','),
    topicPrefix: `${runId}.`,
  };
  const admin = new Kafka({
    clientId: 'agentmeter-tests',
    brokers: env.kafkaBrokers,
    logLevel: logLevel.ERROR,
  }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: ALL_TOPICS.map((topic) => ({
        topic: topicName(env.topicPrefix, topic),
        numPartitions: 3,
        replicationFactor: 1,
      })),
    });
  } finally {
    await admin.disconnect();
  }
  saveTestEnvironment(env);
}

export function withDatabase(url: string, database: string): string {
  const target = new URL(url);
  target.pathname = `/${database}`;
  return target.toString();
}
