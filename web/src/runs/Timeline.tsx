import type { UseQueryResult } from '@tanstack/react-query';
import type { Schemas } from '../api/client';
import { ErrorState, Loading, Panel } from '../components/states';
import { dateTime } from '../format';

type EventPage = Schemas['EventPage'];

const LABELS: Record<string, string> = {
  run_started: 'Run started',
  phase_entered: 'Phase entered',
  phase_advanced: 'Phase advanced',
  artifact_written: 'Artifact written',
  validation_failed: 'Validation failed',
  publish_done: 'Published',
  run_finished: 'Run finished',
  run_failed: 'Run failed',
  cap_hit: 'Cap reached',
  user_override: 'User override',
  cap_warning: 'Cap warning',
  impersonation_started: 'Impersonation started',
  impersonation_ended: 'Impersonation ended',
  proof_due: 'Proof due',
  proof_completed: 'Proof completed',
  task_dequeued: 'Task dequeued',
  external_charge: 'External charge',
  llm_call: 'LLM call',
  tool_call: 'Tool call',
};

/** Per-call facts: counted in the panels above, left out of the timeline. */
const CALLS = new Set(['llm_call', 'tool_call']);

/**
 * The event types the timeline lists, asked of the server (`types`): a run's calls can number a million,
 * so the first page must be its milestones, not its first 500 calls (docs/benchmarks.md "Console load").
 */
export const MILESTONE_TYPES = Object.keys(LABELS).filter((type) => !CALLS.has(type));

/** The run's milestones in event-time order (GET /runs/{run_id}/events?types=…), without its LLM and tool calls. */
export function Timeline({ query, allowed }: { query: UseQueryResult<EventPage>; allowed: boolean }) {
  if (!allowed) {
    return (
      <Panel title="Timeline" id="timeline">
        <p className="muted">Your role does not see run timelines.</p>
      </Panel>
    );
  }
  if (query.isPending) return <Loading label="Loading timeline…" />;
  if (query.isError) return <ErrorState error={query.error} what="the timeline" />;
  const milestones = query.data.items;
  return (
    <Panel title="Timeline" id="timeline">
      {milestones.length === 0 ? (
        <p className="muted">No milestones yet.</p>
      ) : (
        <ol className="timeline" data-testid="timeline">
          {milestones.map((event) => (
            <li key={event.id} className={`tl tl-${event.type}`}>
              <time dateTime={event.time}>{dateTime(event.time)}</time>
              <span className="tl-type">{LABELS[event.type] ?? event.type}</span>
              {event.phase ? (
                <span className="tl-phase">
                  {event.phase}
                  {event.attempt && event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}
                </span>
              ) : null}
            </li>
          ))}
        </ol>
      )}
      <p className="muted">
        LLM and MCP calls are counted above, not listed
        {query.data.next_cursor ? `; the first ${milestones.length} milestones are shown` : ''}.
      </p>
    </Panel>
  );
}
