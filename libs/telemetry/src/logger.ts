import type { LoggerService } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import { redactText, redactValue } from '@agentmeter/domain';

/**
 * JSON-lines logger. Every line carries the service, the active trace id, and has secrets redacted by
 * key name; values that look like credentials are also masked by redactText before they get here.
 */
const REDACT_PATHS = [
  '*.password',
  '*.token',
  '*.secret',
  '*.apiKey',
  '*.api_key',
  '*.authorization',
  '*.webhookUrl',
  '*.webhook_url',
  'headers.authorization',
  'req.headers.authorization',
];

export function createLogger(service: string, level = 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      // Every logged field passes the same redaction as stored events: a secret in an error message or a
      // payload never reaches the log.
      log: (object) => redactValue(withPlainError(object)).value,
    },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((arg) => (typeof arg === 'string' ? redactText(arg).text : arg)) as Parameters<typeof method>,
        );
      },
    },
    mixin() {
      const span = trace.getActiveSpan();
      return span ? { trace_id: span.spanContext().traceId } : {};
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Adapts the pino logger to Nest's LoggerService so framework logs are JSON lines too. */
export class JsonLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, stack?: string, context?: string): void {
    this.logger.error({ context, stack }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}

/** Errors are class instances that redaction passes through; log them as plain, redactable fields. */
function withPlainError(object: Record<string, unknown>): Record<string, unknown> {
  const err = object.err;
  if (!(err instanceof Error)) return object;
  const code = (err as { code?: unknown }).code;
  return {
    ...object,
    err: { type: err.name, message: err.message, stack: err.stack, ...(code === undefined ? {} : { code }) },
  };
}
