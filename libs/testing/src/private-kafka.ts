import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually';
import { freePort } from './services';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');
const SCRIPTS = join(ROOT, 'deploy', 'local', 'kafka');

/**
 * A Kafka broker of one test's own (deploy/local/kafka scripts, a temp state dir, free ports, the shared
 * jars), for tests that kill or stop a broker: the shared broker is never touched.
 */
export interface PrivateKafka {
  brokers: string[];
  /** Where the broker keeps its partitions (topic-partition directories with .log segments). */
  dataDir: string;
  /** kill -9 of the broker process. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data after kill() or stop(). */
  start(): Promise<void>;
  /** Clean stop, then removes its state dir. */
  destroy(): Promise<void>;
}

export async function startPrivateKafka(): Promise<PrivateKafka> {
  const home = mkdtempSync(join(tmpdir(), 'agentmeter-kafka-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const env = {
    ...process.env,
    KAFKA_HOME_DIR: home,
    KAFKA_LIBS_DIR: join(ROOT, '.local', 'kafka', 'libs'),
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_BROKERS: `127.0.0.1:${port}`,
    KAFKA_HEAP_OPTS: '-Xms128m -Xmx384m',
  };
  const pidFile = join(home, 'kafka.pid');
  const start = async () => {
    await run(join(SCRIPTS, 'start.sh'), ['120'], { env, timeout: 150_000 });
  };
  const pid = () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0);
  const alive = (p: number) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  };
  await start();
  return {
    brokers: [`127.0.0.1:${port}`],
    dataDir: join(home, 'data'),
    start,
    kill: async () => {
      const p = pid();
      if (!p || !alive(p)) return;
      process.kill(p, 'SIGKILL');
      await eventually(async () => {
        if (alive(p)) throw new Error(`broker ${p} still alive`);
      }, 30_000);
    },
    destroy: async () => {
      await run(join(SCRIPTS, 'stop.sh'), ['30'], { env, timeout: 60_000 }).catch(() => undefined);
      rmSync(home, { recursive: true, force: true });
    },
  };
}
