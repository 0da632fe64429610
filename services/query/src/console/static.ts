import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import type { PagesPolicy } from '@agentmeter/http';
import type { QueryConfig } from '../config';
import { isPageRequest } from './pages';

/** web/dist from the repository root, seen from this file in src/ (ts-node, jest) or in dist/ (node). */
function defaultConsoleDir(): string | null {
  for (const up of ['../../../../web/dist', '../../../../../../web/dist']) {
    const dir = resolve(__dirname, up);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

/**
 * Serves the console on the API's port (docs/console.md "Pages and API on one port"): the hashed build
 * files under /assets (cached for a year: their names change with their content), and index.html for a
 * browser's navigation to a page path. Everything else goes on to the API routes unchanged. Returns where
 * the pages come from, or null when there is no build (the API alone then).
 */
/** What the security headers treat as the console (its own CSP): page navigations and the build's files. */
export function consolePagesPolicy(config: QueryConfig): PagesPolicy {
  return {
    isPage: (req) => {
      const path = pathOf(req);
      return path.startsWith('/assets/') || path === '/favicon.svg' || isPageRequest(pageRequestOf(req));
    },
    connectSrc: config.CONSOLE_OIDC_ISSUER ? [new URL(config.CONSOLE_OIDC_ISSUER).origin] : [],
  };
}

function pathOf(req: FastifyRequest): string {
  return req.url.split('?', 1)[0]!;
}

function pageRequestOf(req: FastifyRequest) {
  return {
    method: req.method,
    path: pathOf(req),
    accept: req.headers.accept,
    hasCredential: Boolean(req.headers.authorization || req.headers['x-api-key']),
  };
}

export async function serveConsole(app: NestFastifyApplication, config: QueryConfig): Promise<string | null> {
  const dir = config.CONSOLE_DIR ? resolve(config.CONSOLE_DIR) : defaultConsoleDir();
  if (!dir || !existsSync(join(dir, 'index.html'))) return null;
  const index = readFileSync(join(dir, 'index.html'));
  // A missing asset is a 404 (@fastify/static answers it through the not-found handler: a problem).
  await app.register(fastifyStatic, {
    root: join(dir, 'assets'),
    prefix: '/assets/',
    immutable: true,
    maxAge: '365d',
    // The build's .br and .gz copies (web/scripts/precompress.mjs), when the browser accepts them.
    preCompressed: true,
    index: false,
    decorateReply: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  for (const file of ['favicon.svg']) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const content = readFileSync(path);
    fastify.get(`/${file}`, (_req, reply) =>
      reply.header('cache-control', 'public, max-age=86400').type('image/svg+xml').send(content),
    );
  }
  fastify.addHook('onRequest', (req, reply, done) => {
    if (!isPageRequest(pageRequestOf(req))) return done();
    // Pages carry no data (the browser fetches it with its credential), so they are never cached stale.
    void reply
      .code(200)
      .headers({
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-cache',
        vary: 'Accept, Authorization',
      })
      .send(index);
  });
  return dir;
}
