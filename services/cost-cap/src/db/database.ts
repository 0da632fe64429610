import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Pool, type PoolClient, types } from 'pg';
import type { Logger } from 'pino';
import { LISTENED_CLIENT, listenPool } from '@agentmeter/database';
import { CostCapConfig } from '../config';
import { LOGGER } from '../logger';

/**
 * The advisory lock between counter writers and the rebuild. Every change of the Redis counters happens
 * inside a PostgreSQL transaction that holds it shared (and writes the ledger or reservation rows that
 * justify the change); the rebuild holds it exclusively while it reads the snapshot it writes to Redis.
 * So a rebuild sees every committed row and no writer changes Redis while it runs (docs/cost-cap.md).
 */
export const COUNTERS_LOCK = 7_340_010;

const DATE_OID = 1082;

export interface Tx {
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
}

export interface TxOptions {
  /**
   * Commit without waiting for the WAL flush. Only for reservation holds: a crash of PostgreSQL may lose
   * the last few, which are then neither counted nor committed (their holds stay in Redis until expiry).
   * Never for ledger rows.
   */
  asyncCommit?: boolean;
}

/**
 * cost-cap's PostgreSQL pool (node-postgres directly: the admission path is a few short statements per
 * request and runs at Redis speed). Dates come back as "YYYY-MM-DD" strings, bigints as strings.
 */
@Injectable()
export class CostCapDatabase implements OnApplicationShutdown {
  readonly pool: Pool;
  /**
   * A separate small pool for reads of settings, which may happen while a counters transaction holds a
   * connection of the main pool: sharing one pool could exhaust it with transactions that all wait for
   * a read (a deadlock).
   */
  private readonly settingsPool: Pool;

  constructor(@Inject(CostCapConfig) config: CostCapConfig, @Inject(LOGGER) logger: Logger) {
    const options = {
      ...LISTENED_CLIENT,
      connectionString: config.DATABASE_URL,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === DATE_OID ? (value: string) => value : types.getTypeParser(oid, format)) as typeof types.getTypeParser,
      },
    };
    // A PostgreSQL restart breaks every connection: each pool drops its broken clients and connects anew.
    const onError = (error: Error) => logger.warn({ err: error }, 'PostgreSQL connection lost');
    this.pool = listenPool(
      new Pool({ ...options, max: config.DATABASE_POOL_SIZE, application_name: 'agentmeter-cost-cap' }),
      onError,
    );
    this.settingsPool = listenPool(
      new Pool({ ...options, max: 4, application_name: 'agentmeter-cost-cap-settings' }),
      onError,
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.pool.end(), this.settingsPool.end()]);
  }

  /** A read of settings, on its own pool (see settingsPool). */
  async readSettings<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]> {
    return (await this.settingsPool.query(text, values)).rows as T[];
  }

  async query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]> {
    return (await this.pool.query(text, values)).rows as T[];
  }

  transaction<T>(work: (tx: Tx) => Promise<T>, options: TxOptions = {}): Promise<T> {
    return this.run('', work, options);
  }

  /** A transaction holding the counters lock shared: the only way to change Redis counters. */
  withCounters<T>(work: (tx: Tx) => Promise<T>, options: TxOptions = {}): Promise<T> {
    return this.run(`SELECT pg_advisory_xact_lock_shared(${COUNTERS_LOCK});`, work, options);
  }

  /** A transaction holding the counters lock exclusively (the rebuild). */
  exclusiveCounters<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.run(`SELECT pg_advisory_xact_lock(${COUNTERS_LOCK});`, work, {});
  }

  private async run<T>(lock: string, work: (tx: Tx) => Promise<T>, options: TxOptions): Promise<T> {
    const client: PoolClient = await this.pool.connect();
    let broken = false;
    try {
      // One round trip: begin, lock, commit mode.
      await client.query(`BEGIN; ${lock}${options.asyncCommit ? 'SET LOCAL synchronous_commit = off;' : ''}`);
      const tx: Tx = {
        query: async <R>(text: string, values?: unknown[]) => (await client.query(text, values)).rows as R[],
      };
      const result = await work(tx);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true; // a connection that cannot roll back is not returned to the pool
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
