import { redactText } from '@agentmeter/domain';

/**
 * A failed send, classified: "retry" (the same message may go through later) or "permanent" (it never
 * will: stop). Its message is stored and logged, so it never carries a URL path, only what the server or
 * the network said (redacted).
 */
export class DeliveryFailure extends Error {
  constructor(
    message: string,
    readonly verdict: 'retry' | 'permanent',
    readonly statusCode: number | null = null,
    /** The server's Retry-After, when it gave one. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(redactText(message.slice(0, 500)).text);
  }
}

/** A network-level failure (refused, reset, timeout, DNS): worth another attempt. */
export function networkFailure(error: unknown): DeliveryFailure {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  return new DeliveryFailure(`${code ? `${code}: ` : ''}${message}`, 'retry');
}
