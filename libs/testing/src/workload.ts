import type { AgentEventInput, EventType } from '@agentmeter/contracts';
import { formatUsd, parseUsd, tokenCost } from '@agentmeter/domain';

/**
 * A seeded, realistic workload of agent pipelines and its ground truth: several tenants and projects,
 * runs going through phases with retries, LLM calls across models, MCP calls with cache hits and
 * misses, failed runs and runs still in progress. The same options always give the same events (ids
 * included), so publishing a workload twice must change nothing downstream.
 */

export interface WorkloadOptions {
  seed: number;
  tenants: number;
  projectsPerTenant: number;
  runsPerProject: number;
  /** Time of the first event; events of a run follow it by seconds to minutes. */
  start: Date;
  /** Id prefix; different prefixes give disjoint tenants and runs. */
  prefix?: string;
}

export interface StageTruth {
  stage: string;
  status: 'running' | 'passed' | 'failed';
  attempts: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
}

export interface CacheTruth {
  hits: number;
  misses: number;
}

export interface RunTruth {
  tenant_id: string;
  project_id: string;
  run_id: string;
  status: 'running' | 'succeeded' | 'failed';
  stages: StageTruth[];
  totals: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    cost_usd: string;
    llm_calls: number;
  };
  mcp_cache: { tree: CacheTruth; blob: CacheTruth } | null;
}

export interface Workload {
  events: Array<AgentEventInput & { key: string }>;
  truth: { runs: RunTruth[] };
}

export const DEMO_PHASES = [
  { phase: 'plan', role: 'planner' },
  { phase: 'implement', role: 'implementer' },
  { phase: 'validate', role: 'validator' },
  { phase: 'publish', role: 'publisher' },
] as const;

/** Demo list prices, micro-USD per 1M tokens (input, output). Only the workload uses them. */
export const DEMO_MODELS = [
  { model: 'gpt-4.1', provider: 'openai', input: 2_000_000n, output: 8_000_000n },
  { model: 'gpt-4.1-mini', provider: 'openai', input: 400_000n, output: 1_600_000n },
  { model: 'claude-sonnet-4-5', provider: 'anthropic', input: 3_000_000n, output: 15_000_000n },
  { model: 'claude-haiku-4-5', provider: 'anthropic', input: 1_000_000n, output: 5_000_000n },
  { model: 'gemini-2.5-pro', provider: 'google', input: 1_250_000n, output: 10_000_000n },
] as const;

const KEY_SPACES = ['amtp:mcp:tree', 'amtp:mcp:blob'] as const;

/** mulberry32: small, fast, good enough for test data, and identical on every platform. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateWorkload(options: WorkloadOptions): Workload {
  const random = prng(options.seed);
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const hex = (length: number) => Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
  const prefix = options.prefix ?? `s${options.seed}`;
  const source = `agentmeter-demo/${prefix}`;

  const events: Workload['events'] = [];
  const runs: RunTruth[] = [];

  for (let t = 1; t <= options.tenants; t++) {
    const tenantId = `${prefix}-tenant-${t}`;
    for (let p = 1; p <= options.projectsPerTenant; p++) {
      const projectId = `${prefix}-t${t}-project-${p}`;
      for (let r = 1; r <= options.runsPerProject; r++) {
        const runId = `${prefix}-t${t}p${p}-run-${r}`;
        let clock = options.start.getTime() + int(0, 3_600) * 1000;
        let seq = 0;
        const emit = <T extends EventType>(type: T, data: AgentEventInput<T>['data'], traceparent?: string) => {
          clock += int(1, 90) * 1000;
          events.push({
            key: runId,
            specversion: '1.0',
            id: `${runId}-${String(++seq).padStart(4, '0')}`,
            source,
            type,
            time: new Date(clock).toISOString(),
            subject: tenantId,
            datacontenttype: 'application/json',
            ...(traceparent ? { traceparent } : {}),
            data,
          } as AgentEventInput & { key: string });
        };

        const outcome = random();
        const fate: RunTruth['status'] = outcome < 0.7 ? 'succeeded' : outcome < 0.85 ? 'failed' : 'running';
        const stopAt = fate === 'succeeded' ? DEMO_PHASES.length : int(0, DEMO_PHASES.length - 1);
        const base = { tenant_id: tenantId, project_id: projectId, run_id: runId };
        const truth: RunTruth = {
          ...base,
          status: fate,
          stages: [],
          totals: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost_usd: '0', llm_calls: 0 },
          mcp_cache: null,
        };
        let costMicros = 0n;
        const cache = { 'amtp:mcp:tree': { hits: 0, misses: 0 }, 'amtp:mcp:blob': { hits: 0, misses: 0 } };
        let mcpCalls = 0;

        emit('run_started', {
          ...base,
          playbook: pick(['landing-page', 'api-client', 'docs-site']),
          model: DEMO_MODELS[0].model,
          user_id: `${prefix}-user-${t}`,
          environment: { name: 'demo', region: 'eu-west-1', version: '2026.11.0' },
        });

        for (let index = 0; index <= Math.min(stopAt, DEMO_PHASES.length - 1); index++) {
          const { phase, role } = DEMO_PHASES[index]!;
          const isLast = index === stopAt;
          const attempts =
            fate === 'failed' && isLast ? int(1, 3) : 1 + (random() < 0.3 ? 1 : 0) + (random() < 0.1 ? 1 : 0);
          const stage: StageTruth = {
            stage: phase,
            status: 'passed',
            attempts,
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
          };
          for (let attempt = 1; attempt <= attempts; attempt++) {
            const traceId = hex(32);
            const scoped = { ...base, phase, role, attempt };
            emit('phase_entered', scoped, `00-${traceId}-${hex(16)}-01`);
            for (let call = int(1, 4); call > 0; call--) {
              const model = pick(DEMO_MODELS);
              const prompt = int(200, 12_000);
              const completion = int(50, 3_000);
              const cost = tokenCost(BigInt(prompt), model.input) + tokenCost(BigInt(completion), model.output);
              const cached = random() < 0.1;
              emit('llm_call', {
                ...scoped,
                model: model.model,
                provider: model.provider,
                prompt_tokens: prompt,
                completion_tokens: completion,
                cached_tokens: cached ? prompt : int(0, Math.floor(prompt / 4)),
                cost_usd: formatUsd(cost),
                latency_ms: int(300, 20_000),
                cached,
                trace_id: traceId,
                span_id: hex(16),
              });
              stage.prompt_tokens! += prompt;
              stage.completion_tokens! += completion;
              truth.totals.llm_calls += 1;
              costMicros += cost;
            }
            if (phase === 'implement' || phase === 'validate') {
              for (let call = int(0, 5); call > 0; call--) {
                const space = pick(KEY_SPACES);
                const hit = random() < 0.7;
                emit('tool_call', {
                  ...scoped,
                  tool: space === 'amtp:mcp:tree' ? 'github.get_tree' : 'github.get_blob',
                  mcp_server: 'github',
                  cache_key_space: space,
                  cache_hit: hit,
                  latency_ms: hit ? int(1, 20) : int(80, 900),
                  trace_id: traceId,
                });
                cache[space][hit ? 'hits' : 'misses'] += 1;
                mcpCalls += 1;
              }
            }
            const running = fate === 'running' && isLast && attempt === attempts;
            if (running) break;
            emit('artifact_written', {
              ...scoped,
              artifact_path: `artifacts/${runId}/${phase}.md`,
              artifact_version: `v${attempt}`,
            });
            const failed = attempt < attempts || (fate === 'failed' && isLast);
            if (failed) {
              emit('validation_failed', {
                ...scoped,
                reason: pick(['schema mismatch', 'missing section', 'broken link']),
              });
            } else if (phase === 'publish') {
              emit('publish_done', {
                ...scoped,
                artifact_path: `artifacts/${runId}/site.zip`,
                artifact_version: `v${attempt}`,
              });
            } else {
              emit('phase_advanced', { ...scoped, next_phase: DEMO_PHASES[index + 1]?.phase ?? 'done' });
            }
          }
          if (fate === 'running' && isLast) stage.status = 'running';
          else if (fate === 'failed' && isLast) stage.status = 'failed';
          truth.totals.prompt_tokens += stage.prompt_tokens!;
          truth.totals.completion_tokens += stage.completion_tokens!;
          stage.total_tokens = stage.prompt_tokens! + stage.completion_tokens!;
          if (stage.status === 'running') {
            stage.prompt_tokens = stage.completion_tokens = stage.total_tokens = null;
          }
          truth.stages.push(stage);
        }

        if (random() < 0.3 && fate !== 'running') {
          const amount = `0.${String(int(1000, 99_999)).padStart(6, '0')}`;
          emit('external_charge', { ...base, vendor: 'search-api', amount_usd: amount, description: 'web search' });
          costMicros += parseUsd(amount);
        }
        if (fate === 'succeeded') emit('run_finished', { ...base, summary: 'published' });
        if (fate === 'failed') {
          const { phase, role } = DEMO_PHASES[stopAt]!;
          emit('run_failed', { ...base, phase, role, error: 'validation failed on every attempt' });
        }
        truth.totals.total_tokens = truth.totals.prompt_tokens + truth.totals.completion_tokens;
        truth.totals.cost_usd = formatUsd(costMicros);
        truth.mcp_cache = mcpCalls === 0 ? null : { tree: cache['amtp:mcp:tree'], blob: cache['amtp:mcp:blob'] };
        runs.push(truth);
      }
    }
  }
  return { events, truth: { runs } };
}
