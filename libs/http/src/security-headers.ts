import type { INestApplication } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import helmet from 'helmet';

/** Where SwaggerUI is served (SwaggerModule.setup('docs', ...)): its page needs its own scripts and styles. */
const DOCS = /^\/docs(?:[/-]|$)/;

const api = helmet({
  // An API answers JSON, CSV and event streams: nothing in them may load or frame anything.
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  crossOriginResourcePolicy: { policy: 'same-origin' },
});
const docs = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      // SwaggerUI sets inline styles; its images include data: URLs.
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      frameAncestors: ["'none'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
    },
  },
});

/** Web pages served beside the API (the query service's console): which requests, and whom they may call. */
export interface PagesPolicy {
  isPage(request: FastifyRequest): boolean;
  /** Origins the pages fetch from besides their own (an OIDC issuer). */
  connectSrc?: string[];
}

function pagesHelmet(policy: PagesPolicy) {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        // Same-origin scripts and styles only: the console's build has no inline script or style element.
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'", ...(policy.connectSrc ?? [])],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'", ...(policy.connectSrc ?? [])],
      },
    },
  });
}

/**
 * The security headers of every AgentMeter HTTP service (docs/security.md "Headers"): helmet's set, a CSP
 * that allows nothing for API answers, SwaggerUI's own files under /docs, the console's own files for its
 * pages, and no X-Powered-By. Call before any route or body parser is registered, so that every answer
 * (errors included) carries them.
 */
export function useSecurityHeaders(app: INestApplication, pages?: PagesPolicy): void {
  // Fastify sends no X-Powered-By. The helmet middleware sets its headers on the raw response, before routing
  // and body parsing, so 404s and body errors carry them too.
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  const forPages = pages ? pagesHelmet(pages) : undefined;
  fastify.addHook('onRequest', (request, reply, done) => {
    const path = request.url.split('?', 1)[0]!;
    const headers = DOCS.test(path) ? docs : forPages && pages!.isPage(request) ? forPages : api;
    headers(request.raw as never, reply.raw as never, (error) => done(error as Error | undefined));
  });
}
