import type { Logger } from 'pino';

interface ErrorEmitter {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * Listens to the 'error' events of a connection-holding object (ioredis connection, BullMQ Queue or Worker):
 * without a listener an 'error' event is thrown by Node (or printed by the library), and while Redis is away
 * they come every reconnect attempt. The clients reconnect by themselves; this logs the first error of each
 * outage, and one again when it changes, so an outage is a few lines, not thousands.
 */
export function logConnectionErrors<T extends ErrorEmitter>(emitter: T, logger: Logger, what: string): T {
  let last = '';
  let at = 0;
  emitter.on('error', (error: Error) => {
    const message = error?.message ?? String(error);
    if (message === last && Date.now() - at < 60_000) return;
    last = message;
    at = Date.now();
    logger.warn({ err: error, connection: what }, `${what}: connection error`);
  });
  return emitter;
}

interface RedisLike {
  on(event: 'ready' | 'close', listener: () => void): unknown;
}

/**
 * Work that puts back what a Redis restart loses (BullMQ job schedulers and delayed jobs, from the state
 * kept in PostgreSQL): run every `everyMs` by an in-process timer (not a BullMQ job, which would be lost
 * with the rest), and as soon as a watched connection is ready again after a loss. Runs never overlap;
 * a failed run is logged and retried by the next tick. `healthy()` says whether the last run succeeded.
 */
export class RecoveryLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private ok = true;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly everyMs: number,
    private readonly work: () => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  /** Starts the timer; each connection's return after a loss ('close' then 'ready') runs the work at once. */
  start(connections: RedisLike[] = []): void {
    for (const connection of connections) {
      let lost = false;
      connection.on('close', () => (lost = true));
      connection.on('ready', () => {
        if (!lost) return;
        lost = false;
        this.logger.info({ recovery: this.name }, `${this.name}: Redis is back, recovering scheduled work`);
        void this.kick();
      });
    }
    this.timer = setInterval(() => void this.kick(), this.everyMs);
    this.timer.unref();
  }

  /** Runs the work now (once more after the current run, when one is in progress). */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.work()
      .then(() => {
        if (!this.ok) this.logger.info({ recovery: this.name }, `${this.name}: recovered`);
        this.ok = true;
      })
      .catch((error: unknown) => {
        if (this.ok) this.logger.warn({ err: error, recovery: this.name }, `${this.name}: failed, retrying`);
        this.ok = false;
      })
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          void this.kick();
        }
      });
    return this.running;
  }

  /** False while the last run failed (its dependency is down): readiness reports it. */
  healthy(): boolean {
    return this.ok;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
