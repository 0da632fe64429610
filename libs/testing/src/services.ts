import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { testEnvironment } from './environment';
import { TEST_PSEUDONYM_KEY } from './redaction';
import { eventually } from './eventually';

const ROOT = join(__dirname, '..', '..', '..');

export interface RunningService {
  name: string;
  url: string;
  process: ChildProcess;
  /** Output so far, for assertions and for failure messages. */
  output(): string;
  /** Graceful stop (SIGTERM) and wait for exit. */
  stop(): Promise<void>;
  /** Crash (SIGKILL): no shutdown hooks, no final commits. */
  kill(): Promise<void>;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

/**
 * Starts a service as its own process from the compiled build (dist/, made by `make build`), the
 * way production runs it, and waits until /health/ready answers. `port` fixes the port when other services must
 * know it before this one starts (a topology wired by address); `dist` names another folder holding the
 * compiled services (a benchmark runs its private copy, so a `make build` meanwhile cannot pull it away).
 */
export async function startService(
  name: string,
  env: Record<string, string>,
  options: { port?: number; dist?: string } = {},
): Promise<RunningService> {
  const entry = join(options.dist ?? join(ROOT, 'dist'), name, 'services', name, 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`make build\` first`);
  const port = options.port ?? (await freePort());
  let output = '';
  const test = testEnvironment();
  const child = spawn(process.execPath, ['--enable-source-maps', entry], {
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
      // This run's isolation on the shared servers; a test may override any of them.
      KAFKA_BROKERS: test.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: test.topicPrefix,
      REDIS_URL: test.redisUrl,
      REDIS_KEY_PREFIX: test.redisPrefix,
      PSEUDONYM_KEY: TEST_PSEUDONYM_KEY,
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output}`);
      const response = await fetch(`${url}/health/ready`);
      if (!response.ok) throw new Error(`${name} not ready: ${response.status}`);
    },
    60_000,
    100,
  ).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n--- ${name} output ---\n${output}`);
  });
  return {
    name,
    url,
    process: child,
    output: () => output,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}
