import { Client, type ClientConfig, type Pool } from 'pg';

/**
 * node-postgres' Client with a permanent 'error' listener. A client emits 'error' when its socket breaks or
 * the server ends it (a PostgreSQL shutdown sends 57P01 to every backend); the pool listens only while the
 * client is idle, so a client checked out at that moment (between two statements of a transaction) had no
 * listener and the process exited. With this one the error reaches the query in flight, the pool discards
 * the broken client and opens a fresh one on the next checkout. Give it to every pool as `Client`.
 */
export class ListenedPgClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

/** Pool options making each connection a ListenedPgClient (also through TypeORM's `extra`). */
export const LISTENED_CLIENT = { Client: ListenedPgClient } as const;

/** An idle client's error reaches the pool: logged, never an unhandled 'error' event. */
export function listenPool(pool: Pool, onError: (error: Error) => void): Pool {
  pool.on('error', onError);
  return pool;
}
