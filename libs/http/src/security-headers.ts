import type { INestApplication } from '@nestjs/common';
import type { Express, NextFunction, Request, Response } from 'express';
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

/**
 * The security headers of every AgentMeter HTTP service (docs/security.md "Headers"): helmet's set, a CSP
 * that allows nothing for API answers and SwaggerUI's own files under /docs, and no X-Powered-By.
 * Call before any route or body parser is registered, so that every answer (errors included) carries them.
 */
export function useSecurityHeaders(app: INestApplication): void {
  (app.getHttpAdapter().getInstance() as Express).disable('x-powered-by');
  app.use((request: Request, response: Response, next: NextFunction) =>
    (DOCS.test(request.path) ? docs : api)(request, response, next),
  );
}
