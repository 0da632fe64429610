import { Writable } from 'node:stream';
import type pino from 'pino';
import { REDACTION_CORPUS } from '../../domain/src/privacy/redaction-corpus';
import { createLogger } from './logger';

describe('createLogger', () => {
  function capture(): { logger: pino.Logger; lines: () => string } {
    let out = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        out += chunk.toString();
        done();
      },
    });
    return { logger: createLogger('test', 'info', stream), lines: () => out };
  }

  it.each(REDACTION_CORPUS.map((s) => [s.kind, s.context, s] as const))(
    'keeps %s (%s) out of messages, fields and errors',
    (_kind, _context, sample) => {
      const { logger, lines } = capture();
      logger.info(`message ${sample.sample}`);
      logger.warn({ reason: sample.sample, nested: { detail: [sample.sample] } }, 'field');
      logger.error({ err: new Error(`failed: ${sample.sample}`) }, 'error');
      expect(lines()).not.toContain(sample.secret);
    },
  );
});
