import type { Schemas } from '../api/client';
import { Panel } from '../components/states';
import { count, dateTime, usd } from '../format';

type Event = Schemas['TimelineEvent'];
type Run = Schemas['RunMetrics'];

interface Caps {
  max_cost_usd?: string;
  max_tokens?: number;
  max_wall_seconds?: number;
  max_external_usd?: string;
}

const CAP_NAMES: Record<string, string> = {
  cost: 'cost cap',
  tokens: 'token cap',
  wall_time: 'wall-time cap',
  external: 'external-cost cap',
};

/** Micro-dollars of a decimal USD string, exactly (no float arithmetic on money). */
function micros(value: string): bigint {
  const [whole = '0', fraction = ''] = value.split('.');
  return BigInt(whole) * 1_000_000n + BigInt((fraction + '000000').slice(0, 6));
}

/** The run's cost and tokens against the caps it started with (its run_started event). */
export function CostAndCaps({ run, events }: { run: Run; events: Event[] | undefined }) {
  const started = events?.find((event) => event.type === 'run_started');
  const caps = (started?.data.caps ?? null) as Caps | null;
  // Money is absent for roles that may not see it (docs/security.md "Field policy").
  const cost = run.totals.cost_usd;
  const costShare =
    cost !== undefined && caps?.max_cost_usd && micros(caps.max_cost_usd) > 0n
      ? Number((micros(cost) * 1000n) / micros(caps.max_cost_usd)) / 10
      : null;
  return (
    <Panel title="Cost and caps" id="cost">
      <p className="big-number" data-testid="run-cost">
        {cost !== undefined ? usd(cost) : 'Cost hidden for your role'}{' '}
        <span className="muted">over {count(run.totals.llm_calls)} LLM calls</span>
      </p>
      {events === undefined ? (
        <p className="muted">Caps are read from the run's timeline, which your role does not see.</p>
      ) : !caps || Object.keys(caps).length === 0 ? (
        <p className="muted">This run started without run caps (tenant caps still apply).</p>
      ) : (
        <dl className="facts">
          {caps.max_cost_usd ? (
            <div>
              <dt>Cost cap</dt>
              <dd>
                {usd(caps.max_cost_usd)}
                {costShare !== null ? (
                  <>
                    {' '}
                    <meter
                      min={0}
                      max={100}
                      value={Math.min(costShare, 100)}
                      aria-label="Share of the cost cap used"
                    />{' '}
                    {costShare.toFixed(1)} % used
                  </>
                ) : null}
              </dd>
            </div>
          ) : null}
          {caps.max_tokens !== undefined ? (
            <div>
              <dt>Token cap</dt>
              <dd>
                {count(caps.max_tokens)} tokens
                {run.totals.total_tokens !== undefined ? ` (${count(run.totals.total_tokens)} used)` : ''}
              </dd>
            </div>
          ) : null}
          {caps.max_wall_seconds !== undefined ? (
            <div>
              <dt>Wall-time cap</dt>
              <dd>{count(caps.max_wall_seconds)} s</dd>
            </div>
          ) : null}
          {caps.max_external_usd ? (
            <div>
              <dt>External-cost cap</dt>
              <dd>{usd(caps.max_external_usd)}</dd>
            </div>
          ) : null}
        </dl>
      )}
    </Panel>
  );
}

/** Where the run is, and why it stopped when it did (a failure, a cap crossed). */
export function Outcome({ run, events }: { run: Run; events: Event[] | undefined }) {
  const failed = events?.find((event) => event.type === 'run_failed');
  // The first crossing of each cap: the Coordinator and cost-cap may both report the same one.
  const seen = new Set<string>();
  const capHits = (events ?? []).filter((event) => {
    if (event.type !== 'cap_hit') return false;
    const key = `${String(event.data.scope)}/${String(event.data.cap)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return (
    <Panel title="Outcome" id="outcome">
      <dl className="facts">
        <div>
          <dt>Status</dt>
          <dd>
            <span className={`status status-${run.status}`}>{run.status}</span>
            {run.phase ? ` in ${run.phase}` : ''}
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{dateTime(run.started_at)}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{run.finished_at ? dateTime(run.finished_at) : run.status === 'running' ? 'still running' : '—'}</dd>
        </div>
        {run.model ? (
          <div>
            <dt>Model</dt>
            <dd>{run.model}</dd>
          </div>
        ) : null}
      </dl>
      {failed || capHits.length > 0 ? (
        <div className="why" data-testid="why-stopped">
          <h3>Why it stopped</h3>
          <ul>
            {capHits.map((hit) => (
              <li key={hit.id}>
                {String(hit.data.scope) === 'tenant' ? "The tenant's" : 'Its'} {CAP_NAMES[String(hit.data.cap)]} was
                reached at {dateTime(hit.time)}: {capValue(hit, 'observed')} of {capValue(hit, 'limit')}.
              </li>
            ))}
            {failed ? (
              <li>
                Failed{failed.phase ? ` in ${failed.phase}` : ''} at {dateTime(failed.time)}:{' '}
                {String(failed.data.error)}
              </li>
            ) : null}
          </ul>
        </div>
      ) : run.status === 'succeeded' ? (
        <p className="muted">Finished normally.</p>
      ) : null}
    </Panel>
  );
}

function capValue(hit: Event, field: 'limit' | 'observed'): string {
  const value = String(hit.data[field]);
  const cap = String(hit.data.cap);
  if (cap === 'cost' || cap === 'external') return usd(value);
  if (cap === 'tokens') return `${count(Number(value))} tokens`;
  return `${value} s`;
}
