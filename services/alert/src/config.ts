import { z } from 'zod';

/** The alert service's configuration; the only place that reads the environment. */
const Schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3003),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/agentmeter'),
});

/** Injection token of the frozen configuration. */
export const AlertConfig = Symbol('AlertConfig');
export type AlertConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AlertConfig {
  const parsed = Schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`alert: invalid configuration: ${problems}`);
  }
  return Object.freeze(parsed.data);
}
