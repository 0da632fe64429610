// Loads the repository's TypeScript (decorators with metadata, @agentmeter/* paths) in a plain Node
// process, the way jest.config.js does with swc: Playwright's own loader cannot compile the TypeORM
// entities that libs/testing's database set-up imports (docs/console.md "Tests").
const { join } = require('node:path');
const { addHook } = require('pirates');
const { transformSync } = require('@swc/core');
const { register } = require('tsconfig-paths');

const root = join(__dirname, '..', '..');
register({ baseUrl: root, paths: require(join(root, 'tsconfig.json')).compilerOptions.paths });
addHook(
  (code, filename) =>
    transformSync(code, {
      filename,
      sourceMaps: 'inline',
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2023',
      },
      module: { type: 'commonjs' },
    }).code,
  { exts: ['.ts', '.cts'], ignoreNodeModules: true },
);
