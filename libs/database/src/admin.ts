import { Client } from 'pg';

/** Connects to the server's maintenance database ("postgres") of the given URL. */
async function maintenanceClient(url: string): Promise<Client> {
  const target = new URL(url);
  target.pathname = '/postgres';
  const client = new Client({ connectionString: target.toString() });
  await client.connect();
  return client;
}

function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsupported database name "${name}"`);
  return name;
}

/** Creates the URL's database when it does not exist (optionally as a copy of a template). */
export async function ensureDatabase(url: string, template?: string): Promise<boolean> {
  const name = databaseName(url);
  const client = await maintenanceClient(url);
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount) return false;
    await client.query(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
    return true;
  } finally {
    await client.end();
  }
}

/** Drops the URL's database, disconnecting whoever is still connected. */
export async function dropDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const client = await maintenanceClient(url);
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Names of databases whose names start with a prefix (test clean-up). */
export async function listDatabases(url: string, prefix: string): Promise<string[]> {
  const client = await maintenanceClient(url);
  try {
    const rows = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `${prefix}%`,
    ]);
    return rows.rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}
