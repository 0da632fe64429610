import { type Job, type JobSchedulerTemplateOptions, type JobsOptions, Queue, type RepeatOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobSchemas, QueueContract } from '@agentmeter/contracts';
import { logConnectionErrors, withJobTrace } from '@agentmeter/telemetry';
import { type JobData, type JobName, type JobPayload, parseJobData } from './job-data';

export interface JobQueueOptions {
  /** Shared with the process's other queues; the queue does not close it (BullMQ does not close a given one). */
  connection: Redis;
  /** BullMQ key prefix: `${REDIS_KEY_PREFIX}bull`. */
  prefix: string;
  logger: Logger;
  defaultJobOptions?: JobsOptions;
}

/**
 * The producer side of a queue of the registry: jobs are added by name with a typed payload, checked against
 * the queue's schema before they reach Redis (an InvalidJobError is thrown to the caller, nothing is
 * enqueued), and carry the trace context of the enqueuing span. Job options (ids, delays, attempts, backoff)
 * are BullMQ's, passed through unchanged.
 */
export class JobQueue<Jobs extends JobSchemas<Jobs>> {
  private readonly queue: Queue;

  constructor(
    readonly contract: QueueContract<Jobs>,
    { connection, prefix, logger, defaultJobOptions }: JobQueueOptions,
  ) {
    this.queue = logConnectionErrors(
      new Queue(contract.name, { connection, prefix, ...(defaultJobOptions ? { defaultJobOptions } : {}) }),
      logger,
      `queue ${contract.name}`,
    );
  }

  get name(): string {
    return this.contract.name;
  }

  async add<N extends JobName<Jobs>>(
    name: N,
    payload: JobPayload<Jobs, N>,
    opts?: JobsOptions,
  ): Promise<Job<JobData<Jobs, N>>> {
    const data = withJobTrace(parseJobData(this.contract, name, { ...payload, name }));
    return (await this.queue.add(name, data, opts)) as Job<JobData<Jobs, N>>;
  }

  /**
   * Creates or updates a job scheduler producing job `name`. Its data is fixed here, so it carries no trace
   * context: each tick starts a trace of its own.
   */
  async upsertScheduler<N extends JobName<Jobs>>(
    schedulerId: string,
    repeat: Omit<RepeatOptions, 'key'>,
    name: N,
    payload: JobPayload<Jobs, N>,
    opts?: JobSchedulerTemplateOptions,
  ): Promise<void> {
    const data = parseJobData(this.contract, name, { ...payload, name });
    await this.queue.upsertJobScheduler(schedulerId, repeat, { name, data, ...(opts ? { opts } : {}) });
  }

  async getJobScheduler(schedulerId: string): Promise<unknown> {
    return this.queue.getJobScheduler(schedulerId);
  }

  async getJob(jobId: string): Promise<Job | undefined> {
    return this.queue.getJob(jobId);
  }

  /** Removes a job (and its dependencies); 0 when it was locked by a worker or missing. */
  async remove(jobId: string): Promise<number> {
    return this.queue.remove(jobId);
  }

  async getJobCounts(...states: Parameters<Queue['getJobCounts']>): Promise<Record<string, number>> {
    return this.queue.getJobCounts(...states);
  }

  /** Milliseconds since the oldest waiting job was added; 0 when none waits. */
  async oldestWaitingAgeMs(): Promise<number> {
    const [oldest] = await this.queue.getJobs(['waiting'], -1, -1, true);
    return oldest ? Math.max(0, Date.now() - oldest.timestamp) : 0;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
