/**
 * The processes a benchmark runs and measures from the outside (consumers, compiled services), with the
 * head of their output kept for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/** A consumer process. Keeps the head of its output (the first error is the useful one). */
export class ConsumerProcess {
  private output = '';
  private errored = false;
  private readonly exited: Promise<unknown>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly children: Set<ChildProcess>,
  ) {
    children.add(child);
    const capture = (chunk: Buffer) => {
      const text = chunk.toString();
      if (/"level":(50|60)/.test(text)) this.errored = true;
      if (this.output.length < 64 * 1024) this.output += text.slice(0, 64 * 1024 - this.output.length);
    };
    child.stdout!.on('data', capture);
    child.stderr!.on('data', capture);
    this.exited = once(child, 'exit');
  }

  static start(
    name: string,
    args: string[],
    childEnv: NodeJS.ProcessEnv,
    children: Set<ChildProcess>,
  ): ConsumerProcess {
    const child = spawn(process.execPath, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    return new ConsumerProcess(name, child, children);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get log(): string {
    return this.output;
  }

  /** Why a run with this process is meaningless: it exited, or it logged an error (a batch failed). */
  readonly failure = (): Error | undefined => {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.output}`);
    }
    return this.errored ? new Error(`${this.name} logged an error:\n${this.output}`) : undefined;
  };

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await Promise.race([this.exited, delay(15_000).then(() => this.child.kill('SIGKILL'))]);
    }
    this.children.delete(this.child);
  }
}

/**
 * The entry of a compiled service: bench/run.sh copies the Nest build of the service beside the benchmark's
 * build (<out>/<service>), so a rebuild cannot pull it away; dist/<service> otherwise.
 */
export function compiledService(service: string, benchDir: string, root: string): string {
  const copy = join(benchDir, '..', service, 'services', service, 'src', 'main.js');
  const entry = existsSync(copy) ? copy : join(root, 'dist', service, 'services', service, 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`make build\` first`);
  return entry;
}
