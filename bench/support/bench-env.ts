/** The PostgreSQL server the benchmarks create their own databases on (DATABASE_URL, as the services read it). */
export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/agentmeter';

/** The URL of one database on that server. */
export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A progress line on stderr, with the time of day. */
export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}
