import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { type Answer, api, data } from '../api/client';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { LastSyncedBadge } from '../components/LastSyncedBadge';
import { Empty, ErrorState, Loading, Panel, TableWrap } from '../components/states';
import { TextField } from '../components/TextField';
import { count, dateTime, usd } from '../format';
import { utcInput, utcLocalValue, utcMidnight } from './utc';

type Reprice = Answer<'/admin/reprices'>['items'][number];

/** While a request is queued or running, the list is asked again this often (the job has no finer progress). */
const POLL_MS = 2_000;

/**
 * Reprices (POST/GET /admin/reprices, docs/query.md "Prices"): start a reprice of a period, a model or a
 * tenant at the prices stored now, and follow the requests, newest first, until each succeeded (with what
 * it changed) or failed (with why).
 */
export function RepricesPanel() {
  const reprices = useQuery({
    queryKey: keys.prices.reprices(),
    queryFn: () => data(api.GET('/admin/reprices', { params: { query: { limit: 20 } } })),
    refetchInterval: (query) => (query.state.data?.items.some((r) => r.status === 'requested') ? POLL_MS : false),
  });
  const running = reprices.data?.items.some((r) => r.status === 'requested') ?? false;
  return (
    <Panel
      title="Reprices"
      id="reprices"
      actions={
        reprices.data ? (
          <LastSyncedBadge syncedAt={new Date(reprices.dataUpdatedAt).toISOString()} live={running} />
        ) : null
      }
    >
      <p className="muted">
        A reprice prices the stored calls of a period again at the prices stored now; runs, stages and daily totals move
        by the difference. It runs as a job.
      </p>
      <div className="reprice-start">
        <StartReprice />
      </div>
      {reprices.isPending ? (
        <Loading label="Loading reprices…" />
      ) : reprices.isError ? (
        <ErrorState error={reprices.error} what="reprices" />
      ) : reprices.data.items.length === 0 ? (
        <Empty title="No reprice was requested yet." />
      ) : (
        <TableWrap label="Reprice requests">
          <table data-testid="reprices">
            <caption className="visually-hidden">Reprice requests, newest first, times in UTC</caption>
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col">Period and scope</th>
                <th scope="col">Status</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {reprices.data.items.map((r) => (
                <RepriceRow key={r.id} reprice={r} />
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Panel>
  );
}

function RepriceRow({ reprice: r }: { reprice: Reprice }) {
  return (
    <tr data-reprice={r.id}>
      <th scope="row" className="when">
        {dateTime(r.requested_at)}
        <span className="note">request {r.id}</span>
      </th>
      <td>
        {dateTime(r.from)} → {dateTime(r.to)}
        <span className="note">
          {r.model ? `model ${r.model}` : 'every model'} · {r.tenant_id ? `tenant ${r.tenant_id}` : 'every tenant'}
        </span>
      </td>
      <td>
        {r.status === 'requested' ? (
          <span className="status status-running">
            <span className="spinner spinner-inline" aria-hidden="true" /> queued or running
          </span>
        ) : (
          <span className={`status status-${r.status}`}>{r.status}</span>
        )}
        {r.finished_at ? <span className="note">{dateTime(r.finished_at)}</span> : null}
      </td>
      <td>
        {r.result ? (
          <>
            {count(r.result.calls_affected)} of {count(r.result.calls_considered)} calls changed
            <span className="note">
              {usd(r.result.old_total_usd)} → {usd(r.result.new_total_usd)} · unpriced{' '}
              {count(r.result.old_unpriced_calls)} → {count(r.result.new_unpriced_calls)}
            </span>
          </>
        ) : r.detail && r.status === 'failed' ? (
          <span className="field-error">{r.detail}</span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
    </tr>
  );
}

const FIELDS = ['from', 'to', 'model', 'tenant_id'] as const;

function StartReprice() {
  const [draft, setDraft] = useState(() => ({
    from: utcLocalValue(utcMidnight(0)),
    to: utcLocalValue(utcMidnight(1)),
    model: '',
    tenant_id: '',
  }));
  const set = (field: keyof typeof draft) => (event: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [field]: event.target.value }));
  return (
    <ActionForm
      label="Start a reprice"
      fields={FIELDS}
      run={(reason) =>
        data(
          api.POST('/admin/reprices', {
            body: {
              from: utcInput(draft.from) ?? '',
              to: utcInput(draft.to) ?? '',
              model: draft.model.trim() || undefined,
              tenant_id: draft.tenant_id.trim() || undefined,
              reason,
            },
          }),
        ).then((request) => ({ audit_id: request.id }))
      }
      invalidate={[keys.prices.reprices()]}
    >
      {(errors) => (
        <>
          <div className="form-row">
            <TextField
              label="From (UTC)"
              type="datetime-local"
              value={draft.from}
              onChange={set('from')}
              error={errors.from}
              required
            />
            <TextField
              label="To (UTC, not included)"
              type="datetime-local"
              value={draft.to}
              onChange={set('to')}
              error={errors.to}
              required
            />
          </div>
          <TextField
            label="Model (empty: every model)"
            value={draft.model}
            onChange={set('model')}
            error={errors.model}
          />
          <TextField
            label="Tenant (empty: every tenant)"
            value={draft.tenant_id}
            onChange={set('tenant_id')}
            error={errors.tenant_id}
          />
        </>
      )}
    </ActionForm>
  );
}
