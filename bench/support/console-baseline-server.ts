import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { baselinePage, type BaselinePage } from './console-baseline-pages';

export interface BaselineServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * The console benchmark's bare server: node:http serving the baseline pages (console-baseline-pages.ts) at
 * /bare/run/<id>, /bare/admin and /bare/analytics, and passing every other request through to the query
 * service, so the pages fetch the same API answers from their own origin (as the console does from query).
 */
export async function startBaselineServer(queryUrl: string): Promise<BaselineServer> {
  const upstream = new URL(queryUrl);
  const pages: Record<string, string> = {
    run: baselinePage('run'),
    admin: baselinePage('admin'),
    analytics: baselinePage('analytics'),
  } satisfies Record<BaselinePage, string>;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const bare = /^\/bare\/(run|admin|analytics)(\/|$)/.exec(path);
    if (bare) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
      res.end(pages[bare[1]!]);
      return;
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
