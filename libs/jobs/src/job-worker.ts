import { performance } from 'node:perf_hooks';
import { type Job, UnrecoverableError, Worker, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobSchemas, QueueContract } from '@agentmeter/contracts';
import { logConnectionErrors, tracedProcessor } from '@agentmeter/telemetry';
import { InvalidJobError, type JobData, type JobName, parseJobData } from './job-data';
import { type JobOutcome, JobMetrics } from './job-metrics';

/** Runs one job: `data` is the job's data parsed by its schema; `job` and `token` are BullMQ's. */
export type JobHandler<Data> = (data: Data, job: Job<Data>, token?: string) => Promise<unknown>;

/** One handler per job name the queue declares. */
export type JobHandlers<Jobs extends JobSchemas<Jobs>> = {
  [N in JobName<Jobs>]: JobHandler<JobData<Jobs, N>>;
};

export interface JobWorkerOptions extends Omit<WorkerOptions, 'connection' | 'autorun' | 'prefix'> {
  /** Duplicated for the worker (a blocking connection of its own), and that copy closed by close(). */
  connection: Redis;
  /** BullMQ key prefix: `${REDIS_KEY_PREFIX}bull`. */
  prefix: string;
  logger: Logger;
}

/** The handlers do not match the queue's job names one to one: the worker refuses to start. */
export class JobHandlersError extends Error {
  constructor(queue: string, missing: string[], undeclared: string[]) {
    const parts = [
      ...(missing.length > 0 ? [`no handler for ${missing.join(', ')}`] : []),
      ...(undeclared.length > 0 ? [`handlers for jobs the queue does not declare: ${undeclared.join(', ')}`] : []),
    ];
    super(`queue ${queue}: ${parts.join('; ')}`);
    this.name = 'JobHandlersError';
  }
}

/**
 * Checks that every job the queue declares has exactly one handler (a record has at most one per name) and
 * that no handler answers a name the queue does not declare. Throws JobHandlersError otherwise.
 */
export function assertHandlers<Jobs extends JobSchemas<Jobs>>(
  contract: QueueContract<Jobs>,
  handlers: JobHandlers<Jobs>,
): void {
  const declared = Object.keys(contract.jobs);
  const missing = declared.filter((name) => typeof (handlers as Record<string, unknown>)[name] !== 'function');
  const undeclared = Object.keys(handlers).filter((name) => !declared.includes(name));
  if (missing.length > 0 || undeclared.length > 0) throw new JobHandlersError(contract.name, missing, undeclared);
}

/**
 * The processor of a queue of the registry: each job runs in a span continuing its producer's trace
 * (tracedProcessor), is looked up by name and its data parsed by the queue's schema before its handler sees
 * it. A job with an undeclared name or data failing the schema fails at once with the reason (an
 * UnrecoverableError: retrying cannot fix it), and the worker goes on with the next job. A handler's error is
 * rethrown unchanged for BullMQ to retry with the job's backoff. Every attempt is counted (JobMetrics).
 */
export function jobProcessor<Jobs extends JobSchemas<Jobs>>(
  contract: QueueContract<Jobs>,
  handlers: JobHandlers<Jobs>,
  logger: Logger,
  metrics: JobMetrics = JobMetrics.get(),
): (job: Job, token?: string) => Promise<unknown> {
  return tracedProcessor(async (job: Job, token?: string) => {
    const started = performance.now();
    const known = Object.hasOwn(contract.jobs, job.name);
    let outcome: JobOutcome = 'completed';
    try {
      let data: JobData<Jobs, JobName<Jobs>>;
      try {
        data = parseJobData(contract, job.name, job.data);
      } catch (error) {
        if (!(error instanceof InvalidJobError)) throw error;
        outcome = 'rejected';
        logger.warn(
          { queue: contract.name, job: job.name, job_id: job.id, reason: error.message },
          'job rejected: it fails the queue contract',
        );
        throw new UnrecoverableError(error.message);
      }
      const handler = handlers[job.name as JobName<Jobs>] as JobHandler<unknown>;
      try {
        return await handler(data, job, token);
      } catch (error) {
        outcome = outcomeOf(error, job);
        throw error;
      }
    } finally {
      metrics.observe(contract.name, known ? job.name : 'unknown', outcome, (performance.now() - started) / 1000);
    }
  });
}

/**
 * The consumer side of a queue of the registry: refuses to start unless the handlers match the queue's jobs
 * one to one (assertHandlers), then processes with jobProcessor on a connection of its own.
 */
export class JobWorker<Jobs extends JobSchemas<Jobs>> {
  readonly connection: Redis;
  private readonly worker: Worker;

  constructor(
    readonly contract: QueueContract<Jobs>,
    handlers: JobHandlers<Jobs>,
    { connection, logger, ...options }: JobWorkerOptions,
  ) {
    assertHandlers(contract, handlers);
    this.connection = logConnectionErrors(connection.duplicate(), logger, `redis (${contract.name} worker)`);
    this.worker = logConnectionErrors(
      new Worker(contract.name, jobProcessor(contract, handlers, logger), { ...options, connection: this.connection }),
      logger,
      `${contract.name} worker`,
    );
  }

  /** Listens to the jobs that failed an attempt (rejected ones included). */
  onFailed(listener: (job: Job | undefined, error: Error) => void): void {
    this.worker.on('failed', listener);
  }

  isRunning(): boolean {
    return this.worker.isRunning();
  }

  /** Waits for the jobs in progress, then closes the worker and its connection. */
  async close(): Promise<void> {
    await this.worker.close();
    this.connection.disconnect();
  }
}

function outcomeOf(error: unknown, job: Job): JobOutcome {
  const name = error instanceof Error ? error.name : '';
  if (name === 'DelayedError') return 'delayed';
  if (name === 'UnrecoverableError' || isLastAttempt(job)) return 'failed';
  return 'retry';
}

/** Whether this attempt of `job` is its last one (BullMQ will not retry it when it fails). */
export function isLastAttempt(job: Pick<Job, 'attemptsMade' | 'opts'>): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
