import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { eventually } from './eventually';
import { freePort } from './services';

const run = promisify(execFile);

/**
 * PostgreSQL and Redis servers of a test's own, for tests that stop and restart them (outages): the shared
 * servers of the run are never stopped. Each lives in a temporary folder on a free port and is removed by
 * `destroy()`.
 */

/** Where the PostgreSQL binaries are (Debian's layout); PG_BIN overrides. */
function postgresBin(): string {
  const candidates = [
    process.env.PG_BIN,
    '/usr/lib/postgresql/17/bin',
    '/usr/lib/postgresql/16/bin',
    '/usr/lib/postgresql/15/bin',
  ];
  const found = candidates.find((dir) => dir && existsSync(join(dir, 'initdb')));
  if (!found) throw new Error('PostgreSQL binaries not found (initdb): install postgresql or set PG_BIN');
  return found;
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user. */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

export interface PrivatePostgres {
  port: number;
  /** URL of a database on it (`postgres` unless named). */
  url(database?: string): string;
  /** `pg_ctl stop -m immediate`: every backend dies at once, as in a crash (recovery runs on start). */
  stopImmediate(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'am-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await freePort();
  const pg = (command: string, args: string[]) => run(...asPostgres(join(bin, command), args), { timeout: 60_000 });
  await pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c max_connections=200',
    '-c shared_buffers=32MB',
  ].join(' ');
  const start = async () => {
    await pg('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  };
  await start();
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    stopImmediate: async () => void (await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'])),
    start: async () => {
      await start();
      // Crash recovery done: the server accepts connections.
      await eventually(async () => {
        const client = new Client({ connectionString: url() });
        client.on('error', () => undefined);
        await client.connect();
        await client.end();
      }, 60_000);
    },
    destroy: async () => {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateRedis {
  port: number;
  url: string;
  /** `SHUTDOWN NOSAVE`: the server exits and, keeping nothing on disk, comes back empty. */
  shutdownNosave(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
  /** The server's log so far (for failure messages). */
  log(): string;
}

/** A redis-server with no persistence (--save "" --appendonly no), as a child process. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'am-redis-'));
  const port = await freePort();
  const logFile = join(dir, 'log');
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--logfile',
        logFile,
      ],
      { stdio: 'ignore' },
    );
    const started = child;
    await eventually(async () => {
      if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}`);
      await run('redis-cli', ['-p', String(port), 'ping'], { timeout: 5_000 });
    }, 30_000);
  };
  const stop = async (command: string[]) => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    await run('redis-cli', ['-p', String(port), ...command], { timeout: 5_000 }).catch(() => undefined);
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    shutdownNosave: () => stop(['shutdown', 'nosave']),
    start,
    destroy: async () => {
      await stop(['shutdown', 'nosave']);
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}
