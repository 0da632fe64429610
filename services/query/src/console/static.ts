import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import express, { type NextFunction, type Request, type Response } from 'express';
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
    isPage: (req) =>
      req.path.startsWith('/assets/') || req.path === '/favicon.svg' || isPageRequest(pageRequestOf(req)),
    connectSrc: config.CONSOLE_OIDC_ISSUER ? [new URL(config.CONSOLE_OIDC_ISSUER).origin] : [],
  };
}

function pageRequestOf(req: Request) {
  return {
    method: req.method,
    path: req.path,
    accept: req.headers.accept,
    hasCredential: Boolean(req.headers.authorization || req.headers['x-api-key']),
  };
}

export function serveConsole(app: INestApplication, config: QueryConfig): string | null {
  const dir = config.CONSOLE_DIR ? resolve(config.CONSOLE_DIR) : defaultConsoleDir();
  if (!dir || !existsSync(join(dir, 'index.html'))) return null;
  const index = readFileSync(join(dir, 'index.html'));
  app.use(
    '/assets',
    express.static(join(dir, 'assets'), { immutable: true, maxAge: '365d', index: false, fallthrough: false }),
  );
  for (const file of ['favicon.svg']) {
    if (!existsSync(join(dir, file))) continue;
    // Relative to its root: `send` refuses a path through a dot directory (make up runs from .local/run).
    app.use(`/${file}`, (_req: Request, res: Response) => res.sendFile(file, { root: dir, maxAge: '1d' }));
  }
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!isPageRequest(pageRequestOf(req))) return next();
    // Pages carry no data (the browser fetches it with its credential), so they are never cached stale.
    res.status(200).set({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
    res.vary('Accept').vary('Authorization');
    res.end(req.method === 'HEAD' ? undefined : index);
  });
  return dir;
}
