import { DataSource } from 'typeorm';
import { MIGRATIONS } from './migrations';
import { LISTENED_CLIENT } from './pg-client';

export interface DatabaseOptions {
  url: string;
  /** Pool size per process. */
  poolSize?: number;
  applicationName?: string;
}

/** The one way to build a DataSource: explicit migrations, never `synchronize`. */
export function createDataSource(options: DatabaseOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    entities: [],
    // Failed queries surface as errors to the caller's logger; TypeORM's own logging would print parameters.
    logging: false,
    // TypeORM listens to its pool's 'error'; LISTENED_CLIENT covers the checked-out connections.
    extra: {
      ...LISTENED_CLIENT,
      max: options.poolSize ?? 10,
      application_name: options.applicationName ?? 'agentmeter',
    },
  });
}

/** Applies pending migrations; safe to run from several processes (TypeORM takes an advisory lock). */
export async function migrate(url: string): Promise<string[]> {
  const dataSource = createDataSource({ url, poolSize: 2, applicationName: 'agentmeter-migrate' });
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((migration) => migration.name);
  } finally {
    await dataSource.destroy();
  }
}
