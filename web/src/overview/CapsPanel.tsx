import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { api, data } from '../api/client';
import { usePermission } from '../api/hooks';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { Empty, ErrorState, Loading, Panel } from '../components/states';
import { count, dateTime, percent, tokens, usd } from '../format';

const CAPS = [
  { cap: 'tenant_daily_cost', label: 'Tenant daily cost (USD)' },
  { cap: 'run_cost', label: 'Run cost (USD)' },
  { cap: 'run_external', label: 'Run external cost (USD)' },
  { cap: 'run_tokens', label: 'Run tokens' },
  { cap: 'run_wall_time', label: 'Run wall time (seconds)' },
] as const;
type CapName = (typeof CAPS)[number]['cap'];

/**
 * A tenant's caps as cost-cap holds them (GET /tenants/{id}/caps): the daily budget left, the policy, the
 * pause, the raises in force, and, for callers allowed to, the raise switch (72 h or permanent, reason
 * required; the query service audits it).
 */
export function CapsPanel({ tenantId, timeZone }: { tenantId: string; timeZone?: string }) {
  const caps = useQuery({
    queryKey: keys.tenants.caps(tenantId),
    queryFn: () => data(api.GET('/tenants/{tenant_id}/caps', { params: { path: { tenant_id: tenantId } } })),
  });
  const mayRaise = usePermission('caps.raise');
  return (
    <Panel title="Caps and remaining budget" id="caps">
      {caps.isPending ? (
        <Loading label="Loading caps…" />
      ) : caps.isError ? (
        <ErrorState error={caps.error} what="the caps" />
      ) : !caps.data.available ? (
        <Empty title="Caps are not available: the cost-cap service has not created its tables." />
      ) : (
        <>
          {caps.data.paused ? (
            <p className="notice notice-bad" role="status" data-testid="paused">
              Admissions paused since {dateTime(caps.data.paused.paused_at, timeZone)} by {caps.data.paused.paused_by}:{' '}
              {caps.data.paused.reason}
            </p>
          ) : null}
          {caps.data.daily_cost ? (
            <dl className="facts" data-testid="daily-budget">
              <div>
                <dt>Daily cap ({caps.data.daily_cost.date})</dt>
                <dd>{caps.data.daily_cost.limit_usd ? usd(caps.data.daily_cost.limit_usd) : 'none'}</dd>
              </div>
              <div>
                <dt>Spent</dt>
                <dd>{usd(caps.data.daily_cost.spent_usd)}</dd>
              </div>
              <div>
                <dt>Remaining</dt>
                <dd data-testid="remaining">{usd(caps.data.daily_cost.remaining_usd)}</dd>
              </div>
              <div>
                <dt>Used</dt>
                <dd>
                  {percent(caps.data.daily_cost.ratio)}
                  {caps.data.daily_cost.blocked ? <span className="status status-failed"> blocked</span> : null}
                </dd>
              </div>
            </dl>
          ) : (
            <Empty title="No spend recorded against a daily cap yet." />
          )}
          {caps.data.policy ? (
            <dl className="facts">
              <div>
                <dt>Tenant daily cap (policy)</dt>
                <dd data-testid="policy-daily-cap">{usd(caps.data.policy.daily_cost_usd)}</dd>
              </div>
              <div>
                <dt>Run cost cap</dt>
                <dd>{usd(caps.data.policy.run_max_cost_usd)}</dd>
              </div>
              <div>
                <dt>Run external cap</dt>
                <dd>{usd(caps.data.policy.run_max_external_usd)}</dd>
              </div>
              <div>
                <dt>Run token cap</dt>
                <dd>{tokens(caps.data.policy.run_max_tokens)}</dd>
              </div>
              <div>
                <dt>Run wall time cap</dt>
                <dd>
                  {caps.data.policy.run_max_wall_time_s === null
                    ? '—'
                    : `${count(caps.data.policy.run_max_wall_time_s)} s`}
                </dd>
              </div>
            </dl>
          ) : null}
          <h3>Raises in force</h3>
          {caps.data.raises.length === 0 ? (
            <p className="muted">No raise in force.</p>
          ) : (
            <ul className="raises">
              {caps.data.raises.map((r) => (
                <li key={`${r.cap}-${r.run_id ?? ''}-${r.created_at}`}>
                  {r.cap}
                  {r.run_id ? ` (run ${r.run_id})` : ''} to{' '}
                  {r.cap.startsWith('run_t') || r.cap === 'run_wall_time' ? r.limit : usd(r.limit)} until{' '}
                  {dateTime(r.expires_at, timeZone)} · {r.actor}: {r.reason}
                </li>
              ))}
            </ul>
          )}
          {mayRaise ? <RaiseCap tenantId={tenantId} /> : null}
        </>
      )}
    </Panel>
  );
}

function RaiseCap({ tenantId }: { tenantId: string }) {
  const [cap, setCap] = useState<CapName>('tenant_daily_cost');
  const [limit, setLimit] = useState('');
  const [duration, setDuration] = useState<'72h' | 'permanent'>('72h');
  const id = useId();
  return (
    <ActionForm
      label="Raise a cap"
      run={(reason) =>
        data(
          api.POST('/tenants/{tenant_id}/caps', {
            params: { path: { tenant_id: tenantId } },
            body: { cap, limit, duration, reason },
          }),
        )
      }
      invalidate={[keys.tenants.caps(tenantId), ['admin']]}
    >
      <label htmlFor={`${id}-cap`}>Cap</label>
      <select id={`${id}-cap`} value={cap} onChange={(e) => setCap(e.target.value as CapName)}>
        {CAPS.map((c) => (
          <option key={c.cap} value={c.cap}>
            {c.label}
          </option>
        ))}
      </select>
      <label htmlFor={`${id}-limit`}>New limit</label>
      <input
        id={`${id}-limit`}
        value={limit}
        inputMode="decimal"
        required
        pattern="\d{1,12}(\.\d{1,6})?"
        onChange={(e) => setLimit(e.target.value.trim())}
      />
      <fieldset className="switch">
        <legend>Duration</legend>
        <label>
          <input
            type="radio"
            name={`${id}-duration`}
            checked={duration === '72h'}
            onChange={() => setDuration('72h')}
          />
          72 hours
        </label>
        <label>
          <input
            type="radio"
            name={`${id}-duration`}
            checked={duration === 'permanent'}
            onChange={() => setDuration('permanent')}
          />
          Permanent
        </label>
      </fieldset>
    </ActionForm>
  );
}
