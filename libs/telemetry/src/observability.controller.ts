import { Controller, Get, Header, HttpCode, Inject, ServiceUnavailableException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { metricsRegistry } from './metrics';

/** A dependency whose readiness /health/ready reports (database, broker, Redis...). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** Each service provides this token with its ReadinessCheck[] and registers ObservabilityController. */
export const READINESS_CHECKS = Symbol('READINESS_CHECKS');

/**
 * A check that has not answered by then fails: a client that queues commands while its server is away
 * (BullMQ's Redis connections do) would otherwise keep the probe waiting for the whole outage.
 */
const CHECK_TIMEOUT_MS = 2_000;

function withTimeout(check: ReadinessCheck): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${check.name}: no answer`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([check.check(), timeout]).finally(() => clearTimeout(timer));
}

@ApiExcludeController()
@Controller()
export class ObservabilityController {
  constructor(@Inject(READINESS_CHECKS) private readonly checks: ReadinessCheck[]) {}

  /** Liveness: the process answers. */
  @Get('health')
  @HttpCode(200)
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: every dependency answers. */
  @Get('health/ready')
  async ready(): Promise<{ status: 'ok'; checks: Record<string, 'ok'> }> {
    const results = await Promise.allSettled(this.checks.map(withTimeout));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [this.checks[i]!.name] : []));
    if (failed.length > 0) throw new ServiceUnavailableException(`not ready: ${failed.join(', ')}`);
    return { status: 'ok', checks: Object.fromEntries(this.checks.map((c) => [c.name, 'ok' as const])) };
  }

  @Get('metrics')
  @Header('Content-Type', metricsRegistry.contentType)
  metrics(): Promise<string> {
    return metricsRegistry.metrics();
  }
}
