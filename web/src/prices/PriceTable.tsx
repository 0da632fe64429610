import { useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { type Answer, api, data } from '../api/client';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { CsvDownload } from '../components/CsvDownload';
import { LastSyncedBadge } from '../components/LastSyncedBadge';
import { Empty, ErrorState, Loading, Panel, TableWrap } from '../components/states';
import { dateTime, usd } from '../format';

type Price = Answer<'/admin/prices'>['items'][number];

/** The API's largest page of prices (QUERY_MAX_PAGE_SIZE's default); the filters narrow a longer table. */
const LIMIT = 500;
export interface PriceFilters {
  provider?: string;
  model?: string;
  history?: 'true';
  [key: string]: string | undefined;
}

/** A rate of the API (decimal USD per 1M tokens), or what applies in its place when it is absent. */
function rate(value: string | null, fallback: string): string {
  return value === null ? fallback : usd(value);
}

/**
 * The price table (GET /admin/prices): one row per price, grouped by provider and model (the API's order),
 * the list price before the tenants' overrides and the newest start first; the history adds superseded
 * and retired prices. A current or scheduled price can be retired from here.
 */
export function PriceTable({ filters, onFilters }: { filters: PriceFilters; onFilters: (next: PriceFilters) => void }) {
  const prices = useQuery({
    queryKey: keys.prices.list(filters),
    queryFn: () => data(api.GET('/admin/prices', { params: { query: { ...filters, limit: LIMIT } } })),
  });
  const query = new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => Boolean(e[1])));
  return (
    <Panel
      title="Price table"
      id="price-table"
      actions={
        <div className="panel-actions">
          {prices.data ? (
            <LastSyncedBadge syncedAt={new Date(prices.dataUpdatedAt).toISOString()} live={false} />
          ) : null}
          <CsvDownload
            path={`/admin/prices${query.size ? `?${query}` : ''}`}
            filename="prices.csv"
            label="Export CSV"
          />
        </div>
      }
    >
      <PriceFiltersForm value={filters} onChange={onFilters} />
      {prices.isPending ? (
        <Loading label="Loading prices…" />
      ) : prices.isError ? (
        <ErrorState error={prices.error} what="prices" />
      ) : prices.data.items.length === 0 ? (
        <Empty title="No price matches.">
          <p className="muted">Calls of a model without a price are stored unpriced until one is added and repriced.</p>
        </Empty>
      ) : (
        <>
          {prices.data.items.length >= prices.data.limit ? (
            <p className="notice" role="note">
              The first {prices.data.limit} prices are shown: filter by provider or model to see the others.
            </p>
          ) : null}
          <TableWrap label="Prices">
            <table className="prices" data-testid="prices">
              <caption className="visually-hidden">
                Prices by provider and model, US dollars per million tokens, times in UTC
              </caption>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="hide-narrow">
                    Effective from
                  </th>
                  <th scope="col" className="num">
                    Input
                  </th>
                  <th scope="col" className="num hide-narrow">
                    Cached input
                  </th>
                  <th scope="col" className="num">
                    Output
                  </th>
                  <th scope="col" className="num hide-narrow">
                    Reasoning
                  </th>
                  <th scope="col" className="hide-narrow">
                    Note
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {prices.data.items.map((price, i, all) => (
                  <PriceRow key={price.id} price={price} first={i === 0 || !sameList(all[i - 1]!, price)} />
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      )}
    </Panel>
  );
}

function sameList(a: Price, b: Price): boolean {
  return a.provider === b.provider && a.model === b.model && a.tenant_id === b.tenant_id;
}

function PriceRow({ price: p, first }: { price: Price; first: boolean }) {
  const past = p.status === 'superseded' || p.status === 'retired';
  return (
    <tr className={`${first ? 'group-start' : ''} ${past ? 'past' : ''}`.trim()} data-price={p.id}>
      <th scope="row">
        {p.model}
        <span className="note">
          {p.provider} · {p.tenant_id === null ? 'list price' : `tenant ${p.tenant_id}`}
        </span>
      </th>
      <td>
        <span className={`status status-price-${p.status}`}>{p.status}</span>
        <span className="note show-narrow">from {dateTime(p.effective_from)}</span>
        {p.retired_at ? <span className="note">retired {dateTime(p.retired_at)}</span> : null}
      </td>
      <td className="when hide-narrow">{dateTime(p.effective_from)}</td>
      <td className="num">{usd(p.input_usd_per_million)}</td>
      <td className="num hide-narrow">{rate(p.cached_input_usd_per_million, 'as input')}</td>
      <td className="num">{usd(p.output_usd_per_million)}</td>
      <td className="num hide-narrow">{rate(p.reasoning_usd_per_million, 'as output')}</td>
      <td className="hide-narrow price-note">{p.note ?? <span className="muted">—</span>}</td>
      <td>
        {past ? null : (
          <ActionForm
            label="Retire"
            context={`${p.provider} ${p.model} from ${dateTime(p.effective_from)}`}
            run={(reason) =>
              data(
                api.POST('/admin/prices/{price_id}/retire', { params: { path: { price_id: p.id } }, body: { reason } }),
              )
            }
            invalidate={[keys.prices.all()]}
            danger
          />
        )}
      </td>
    </tr>
  );
}

function PriceFiltersForm({ value, onChange }: { value: PriceFilters; onChange: (next: PriceFilters) => void }) {
  const [draft, setDraft] = useState(value);
  function submit(event: FormEvent) {
    event.preventDefault();
    onChange(draft);
  }
  return (
    <form className="filters" onSubmit={submit} aria-label="Price filters">
      <label>
        Provider
        <input
          name="provider"
          value={draft.provider ?? ''}
          onChange={(e) => setDraft({ ...draft, provider: e.target.value.trim() || undefined })}
        />
      </label>
      <label>
        Model
        <input
          name="model"
          value={draft.model ?? ''}
          onChange={(e) => setDraft({ ...draft, model: e.target.value.trim() || undefined })}
        />
      </label>
      <label className="checkbox">
        <input
          type="checkbox"
          checked={draft.history === 'true'}
          onChange={(e) => {
            const next = { ...draft, history: e.target.checked ? ('true' as const) : undefined };
            setDraft(next);
            onChange(next);
          }}
        />
        Include history (superseded and retired)
      </label>
      <button type="submit" className="button-primary">
        Apply
      </button>
    </form>
  );
}
