// Three tiers (STYLE.md habit 10): unit (*.spec.ts, no IO), integration (*.int-spec.ts, real
// PostgreSQL/Redis/Kafka), end-to-end (*.e2e-spec.ts, whole services as processes). No retries.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2023',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

const moduleNameMapper = {
  '^@agentmeter/(contracts|domain|database|http|jobs|kafka|telemetry|testing)$': '<rootDir>/libs/$1/src',
};

const common = {
  rootDir: __dirname,
  // ESM-only packages (jose, NestJS; content-disposition of @fastify/static and path-to-regexp of
  // @fastify/middie, on cost-cap's Fastify): swc turns them into CommonJS for the test runtime (Node loads
  // them with require(esm) in dist, docs/decisions.md "Current majors").
  transform: {
    '^.+\\.ts$': swc,
    '/node_modules/(jose|content-disposition|path-to-regexp|@nestjs/[^/]+)/.+\\.js$': swc,
  },
  transformIgnorePatterns: ['^(?!.*/node_modules/(jose|content-disposition|path-to-regexp|@nestjs)/).*/node_modules/'],
  moduleNameMapper,
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.local/'],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{services,libs,tools,deploy}/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{services,libs,tools,deploy}/**/*.int-spec.ts'],
      globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/timeouts/integration.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/{services,libs,tools}/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/libs/testing/src/global-setup.ts',
      globalTeardown: '<rootDir>/libs/testing/src/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/libs/testing/src/timeouts/e2e.ts'],
    },
  ],
};
