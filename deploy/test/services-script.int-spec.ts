import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, freePort } from '@agentmeter/testing';
import { ROOT } from './repository';

const run = promisify(execFile);

/**
 * deploy/local/services.sh with a stand-in service (a few lines of node answering /health/ready with the
 * version it was built as): start replaces a process killed with SIGKILL a moment before, and one whose pid
 * file names a dead or unrelated process; a rebuild of dist/ does not touch the files of the running one.
 */
describe('deploy/local/services.sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'am-services-'));
  let port: number;
  let env: NodeJS.ProcessEnv;
  const pidFile = join(dir, 'run', 'ingest.pid');

  function build(version: string): void {
    const folder = join(dir, 'dist', 'ingest', 'services', 'ingest', 'src');
    mkdirSync(folder, { recursive: true });
    writeFileSync(
      join(folder, 'main.js'),
      `require('node:http').createServer((req, res) => res.end(${JSON.stringify(version)})).listen(Number(process.env.PORT), '127.0.0.1');\n`,
    );
  }

  const script = (command: string) => run(join(ROOT, 'deploy/local/services.sh'), [command], { env, timeout: 90_000 });
  const version = async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).text();
  const pid = () => Number(readFileSync(pidFile, 'utf8').trim());
  const alive = (p: number) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    port = await freePort();
    env = {
      PATH: process.env.PATH,
      AGENTMETER_DIST: join(dir, 'dist'),
      AGENTMETER_RUN: join(dir, 'run'),
      AGENTMETER_SERVICES: 'ingest',
      INGEST_PORT: String(port),
    };
    build('v1');
  });

  afterAll(async () => {
    await script('stop').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('restarts a service killed with SIGKILL a moment before, instead of calling it "already running"', async () => {
    await script('start');
    expect(await version()).toBe('v1');
    const first = pid();
    process.kill(first, 'SIGKILL');
    const { stdout } = await script('start');
    expect(stdout).not.toContain('already running');
    expect(stdout).toContain('ingest ready');
    expect(pid()).not.toBe(first);
    expect(alive(pid())).toBe(true);
    expect(await version()).toBe('v1');
  });

  it('runs from its own copy of the build: rebuilding dist/ changes nothing until the next start', async () => {
    build('v2');
    rmSync(join(dir, 'dist', 'ingest', 'services', 'ingest', 'src', 'main.js'));
    expect(existsSync(join(dir, 'run', 'app', 'ingest', 'services', 'ingest', 'src', 'main.js'))).toBe(true);
    expect(await version()).toBe('v1');
    build('v2');
    expect((await script('start')).stdout).toContain('already running');
    expect(await version()).toBe('v1');
    await script('stop');
    expect(existsSync(pidFile)).toBe(false);
    await script('start');
    expect(await version()).toBe('v2');
  });

  it('starts a service whose pid file names a dead process or another program', async () => {
    await script('stop');
    writeFileSync(pidFile, '999999999\n');
    await script('start');
    expect(await version()).toBe('v2');
    await script('stop');
    writeFileSync(pidFile, `${process.pid}\n`); // alive, but not the service
    await script('start');
    expect(pid()).not.toBe(process.pid);
    expect(alive(process.pid)).toBe(true);
    await eventually(async () => expect(await version()).toBe('v2'));
    expect((await script('status')).stdout).toContain(`ingest: running (pid ${pid()})`);
  });
});
