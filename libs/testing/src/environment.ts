import { execSync } from 'node:child_process';

/**
 * Where the test run's PostgreSQL, Redis and Kafka are, and the names that isolate this run on them.
 * Filled by the global setup into process.env, read by test files through testEnvironment().
 */
export interface TestEnvironment {
  runId: string;
  /** Admin URL of the server; test databases are created beside it. */
  databaseUrl: string;
  /** The migrated template database that each test file clones. */
  templateDatabase: string;
  redisUrl: string;
  redisPrefix: string;
  kafkaBrokers: string[];
  topicPrefix: string;
}

const KEY = 'AGENTMETER_TEST_ENV';

export function saveTestEnvironment(env: TestEnvironment): void {
  process.env[KEY] = JSON.stringify(env);
}

export function testEnvironment(): TestEnvironment {
  const raw = process.env[KEY];
  if (!raw) throw new Error('test environment missing: integration and e2e tests run through the jest global setup');
  return JSON.parse(raw) as TestEnvironment;
}

export function hasTestEnvironment(): boolean {
  return Boolean(process.env[KEY]);
}

export function dockerAvailable(): boolean {
  try {
    execSync('docker info', { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}
