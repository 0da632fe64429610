import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from '@agentmeter/database';
import { testEnvironment } from './environment';
import { withDatabase } from './global-setup';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh database for one test file, cloned from the run's migrated template (fast, no migrations). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const env = testEnvironment();
  const url = withDatabase(env.databaseUrl, `am_${env.runId}_${randomBytes(4).toString('hex')}`);
  await ensureDatabase(url, env.templateDatabase);
  return { url, drop: () => dropDatabase(url) };
}
