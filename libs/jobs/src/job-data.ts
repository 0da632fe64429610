import type { z } from 'zod';
import type { JobSchemas, QueueContract } from '@agentmeter/contracts';

/** The job names a queue declares. */
export type JobName<Jobs> = keyof Jobs & string;

/** The data of job `N` as its processor receives it (parsed by its schema). */
export type JobData<Jobs extends JobSchemas<Jobs>, N extends JobName<Jobs>> = z.output<Jobs[N]>;

/** What a producer gives for job `N`: its data without the name and trace context, which the queue adds. */
export type JobPayload<Jobs extends JobSchemas<Jobs>, N extends JobName<Jobs>> = Omit<
  z.input<Jobs[N]>,
  'name' | 'trace'
>;

/** A job's data that fails its schema (or names no job of the queue): the reason names the fields, not values. */
export class InvalidJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidJobError';
  }
}

/**
 * The declared schema of `name` on `contract`, or an InvalidJobError: enqueueing and processing check the
 * same way. Zod's issue messages name the expected type and the path, never the offending value.
 */
export function parseJobData<Jobs extends JobSchemas<Jobs>>(
  contract: QueueContract<Jobs>,
  name: string,
  data: unknown,
): JobData<Jobs, JobName<Jobs>> {
  if (!Object.hasOwn(contract.jobs, name)) {
    throw new InvalidJobError(`unknown job "${name}" on queue ${contract.name}`);
  }
  const schema = contract.jobs[name as JobName<Jobs>];
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(data)'}: ${issue.message}`);
    throw new InvalidJobError(`invalid data for job "${name}" on queue ${contract.name}: ${issues.join('; ')}`);
  }
  return parsed.data as JobData<Jobs, JobName<Jobs>>;
}
