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

/** Per-call facts: counted in the panels above, folded away here. */
const CALLS = new Set(['llm_call', 'tool_call']);

/** The run's events in event-time order (GET /runs/{run_id}/events), LLM and tool (MCP) calls folded away. */
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
  const milestones = query.data.items.filter((event) => !CALLS.has(event.type));
  const calls = query.data.items.length - milestones.length;
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
        {calls} LLM and MCP calls not listed{query.data.next_cursor ? '; the first 500 events are shown' : ''}.
      </p>
    </Panel>
  );
}
