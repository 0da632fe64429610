import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { openApiDocument, QueryModule } from '../app.module';
import { loadConfig } from '../config';

/**
 * Writes the query API's OpenAPI document (the one /docs-json serves) to a file, without a database or a
 * port: the console's build generates its API types from it (docs/console.md), so a renamed field fails
 * the console's type check. Nest's preview mode reads the controllers' metadata without creating providers.
 */
async function main(): Promise<void> {
  const target = resolve(process.argv[2] ?? 'dist/openapi/query.json');
  // A placeholder secret: nothing is verified, the configuration only has to parse.
  const config = loadConfig({ AUTH_JWT_SECRET: 'openapi-document-only-0123456789abcdef', LOG_LEVEL: 'silent' });
  const app = await NestFactory.create(QueryModule.forRoot(config), new FastifyAdapter(), {
    preview: true,
    logger: false,
  });
  const document = openApiDocument(app);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(document, null, 2)}\n`);
  await app.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
