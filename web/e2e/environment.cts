// Run with `node -r ./register.cjs environment.cts setup|teardown` by global-setup.ts (docs/console.md "Tests").
import globalSetup from '../../libs/testing/src/global-setup';
import globalTeardown from '../../libs/testing/src/global-teardown';
import { createTestDatabase } from '../../libs/testing/src/database';

/**
 * `setup`: libs/testing's run set-up (migrated template database, this run's topics) and one database
 * cloned from it; prints both as JSON. `teardown` (AGENTMETER_TEST_ENV set): removes everything the run made.
 */
async function main(): Promise<void> {
  if (process.argv[2] === 'setup') {
    await globalSetup();
    const database = await createTestDatabase();
    process.stdout.write(JSON.stringify({ env: process.env.AGENTMETER_TEST_ENV, databaseUrl: database.url }));
  } else {
    await globalTeardown();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
