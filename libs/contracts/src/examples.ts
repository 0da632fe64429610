import type { AgentEventInput } from './envelope';
import type { EventType } from './events';

/**
 * One example of each event type, as a producer sends it. docs/events.md is generated from these
 * (`make schemas`) and a unit test checks that every one is valid.
 */
const run = { tenant_id: 'acme', project_id: 'landing-page', run_id: 'run-7f3a' };
const stage = { ...run, phase: 'implement', role: 'implementer', attempt: 2 };

const data: { [T in EventType]: AgentEventInput<T>['data'] } = {
  run_started: {
    ...run,
    phase: 'plan',
    role: 'planner',
    playbook: 'landing-page',
    model: 'gpt-4.1',
    user_id: 'u-42',
    caps: { max_tokens: 400_000, max_wall_time_s: 3_600, max_cost_usd: '5.00' },
    environment: { name: 'prod', region: 'eu-west-1', version: '2026.11.3' },
  },
  phase_entered: stage,
  artifact_written: { ...stage, artifact_path: 'artifacts/run-7f3a/implement.md', artifact_version: 'v2' },
  validation_failed: {
    ...stage,
    reason: 'missing section: pricing',
    artifact_path: 'artifacts/run-7f3a/implement.md',
    artifact_version: 'v2',
  },
  phase_advanced: {
    ...stage,
    next_phase: 'validate',
    input_tokens: 18_400,
    output_tokens: 2_150,
    cost_usd: '0.083500',
  },
  publish_done: {
    ...run,
    phase: 'publish',
    role: 'publisher',
    attempt: 1,
    artifact_path: 'artifacts/run-7f3a/site.zip',
    artifact_version: 'v1',
    partial: false,
  },
  run_finished: {
    ...run,
    phase: 'publish',
    role: 'publisher',
    input_tokens: 1_200,
    output_tokens: 140,
    cost_usd: '0.004100',
    summary: 'published landing page',
  },
  run_failed: { ...run, phase: 'validate', role: 'validator', error: 'validation failed on every attempt' },
  cap_hit: {
    ...run,
    phase: 'implement',
    role: 'implementer',
    scope: 'tenant',
    cap: 'cost',
    limit: '50.000000',
    observed: '50.012000',
    day: '2026-11-25',
    resets_at: '2026-11-26T08:00:00Z',
    override: {
      override_id: '0b7e4c1e-5f2a-4d3b-9c61-2f1f0e7a9d10',
      limit: '50.000000',
      expires_at: '2026-11-27T09:30:00Z',
      actor: 'ops@acme',
      reason: 'launch week',
    },
  },
  user_override: { ...run, user_id: 'u-42', action: 'reopen_phase', reason: 'client changed the brief', phase: 'plan' },
  impersonation_started: {
    tenant_id: 'acme',
    session_id: 'imp-1',
    actor_id: 'support-7',
    target_user_id: 'u-42',
    reason: 'ticket 1234',
  },
  impersonation_ended: { tenant_id: 'acme', session_id: 'imp-1', actor_id: 'support-7' },
  llm_call: {
    ...stage,
    model: 'claude-sonnet-4-5',
    provider: 'anthropic',
    prompt_tokens: 5_210,
    completion_tokens: 812,
    cached_tokens: 1_024,
    cost_usd: '0.027810',
    latency_ms: 6_420,
    cached: false,
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    span_id: '00f067aa0ba902b7',
  },
  tool_call: {
    ...stage,
    tool: 'github.get_tree',
    mcp_server: 'github',
    cache_key_space: 'amtp:mcp:tree',
    cache_hit: true,
    latency_ms: 4,
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  },
  external_charge: {
    ...run,
    phase: 'implement',
    vendor: 'search-api',
    amount_usd: '0.004000',
    description: 'web search',
  },
  proof_due: { ...run, proof_id: 'proof-1', due_at: '2026-11-27T12:00:00Z' },
  proof_completed: { ...run, proof_id: 'proof-1', passed: true },
  task_dequeued: { ...run, queue: 'implementer', phase: 'implement', enqueued_at: '2026-11-25T10:00:00Z' },
  cap_warning: { ...run, scope: 'run', cap: 'cost', limit: '5.000000', observed: '4.100000' },
};

export const EXAMPLE_EVENTS: AgentEventInput[] = (Object.keys(data) as EventType[]).map((type, index) => ({
  specversion: '1.0',
  id: `01JD${String(index).padStart(4, '0')}`,
  source: 'coordinator/eu-west-1',
  type,
  time: '2026-11-25T10:00:00Z',
  subject: 'acme',
  datacontenttype: 'application/json',
  data: data[type],
})) as AgentEventInput[];
