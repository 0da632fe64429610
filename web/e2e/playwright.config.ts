import { defineConfig } from '@playwright/test';

/**
 * Browser tests of the console (docs/console.md "Tests"): Debian's Chromium (Playwright's own browser
 * download cannot work on these machines) against ingest and query started from dist/ with a seeded
 * workload. One worker: the services and the workload are shared by every test file.
 */
export default defineConfig({
  testDir: '.',
  testMatch: '*.pw.ts',
  globalSetup: './global-setup.ts',
  outputDir: '../test-results',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: true,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    // The query service the global set-up started (workers read the config after it ran).
    baseURL: process.env.AGENTMETER_CONSOLE_WORLD
      ? (JSON.parse(process.env.AGENTMETER_CONSOLE_WORLD) as { queryUrl: string }).queryUrl
      : undefined,
    browserName: 'chromium',
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'off',
  },
});
