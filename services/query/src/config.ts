import { z } from 'zod';

/** The query service's configuration; the only place that reads the environment. */
const Schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/agentmeter'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  /** HS256 secret that signs bearer JWTs (at least 32 characters). Required: there is no open mode. */
  AUTH_JWT_SECRET: z.string().min(32, 'AUTH_JWT_SECRET must be at least 32 characters'),
  AUTH_JWT_ISSUER: z.string().default('agentmeter'),
  AUTH_JWT_AUDIENCE: z.string().default('agentmeter-api'),
});

/** Injection token of the frozen configuration. */
export const QueryConfig = Symbol('QueryConfig');
export type QueryConfig = Readonly<z.output<typeof Schema>>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): QueryConfig {
  const parsed = Schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`query: invalid configuration: ${problems}`);
  }
  return Object.freeze(parsed.data);
}
