/**
 * Connection-level failures of PostgreSQL (node-postgres, also through TypeORM), Redis (ioredis) and
 * BullMQ: the dependency is gone or restarting, the request itself is fine and a retry in a moment may
 * succeed. ProblemFilter answers them 503 with Retry-After instead of 500 (docs/operations.md).
 */
export type Dependency = 'postgres' | 'redis' | 'a dependency';

/** Socket-level codes, whoever raised them (the dependency is then not named). */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs meaning "this connection or server is unusable now": class 08 (connection
 * exception), 57P01-57P03 (administrator/crash shutdown, cannot connect now), 53300 (too many connections).
 */
function isPostgresUnavailableCode(code: string): boolean {
  return /^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

const POSTGRES_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Cannot use a pool after calling end on the pool',
  'the database system is',
];
const REDIS_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'Connection in subscriber mode',
  'LOADING Redis is loading',
];

/** The unavailable dependency behind an error (looking through TypeORM's driverError and `cause`), or null. */
export function unavailableDependency(error: unknown, depth = 0): Dependency | null {
  if (!error || typeof error !== 'object' || depth > 4) return null;
  const { code, name, message, driverError, cause, errors } = error as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
    driverError?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (name === 'MaxRetriesPerRequestError') return 'redis';
  if (typeof code === 'string' && isPostgresUnavailableCode(code)) return 'postgres';
  const text = typeof message === 'string' ? message : '';
  if (POSTGRES_MESSAGES.some((m) => text.includes(m))) return 'postgres';
  if (REDIS_MESSAGES.some((m) => text.includes(m))) return 'redis';
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return 'a dependency';
  for (const inner of [driverError, cause, ...(Array.isArray(errors) ? errors : [])]) {
    const found = unavailableDependency(inner, depth + 1);
    if (found) return found;
  }
  return null;
}
