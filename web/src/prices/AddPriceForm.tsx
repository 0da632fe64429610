import { useState } from 'react';
import { api, data } from '../api/client';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { TextField } from '../components/TextField';
import { utcInput } from './utc';

const FIELDS = [
  'provider',
  'model',
  'tenant_id',
  'effective_from',
  'input_usd_per_million',
  'output_usd_per_million',
  'cached_input_usd_per_million',
  'reasoning_usd_per_million',
  'note',
] as const;
type Field = (typeof FIELDS)[number];

const EMPTY: Record<Field, string> = Object.fromEntries(FIELDS.map((f) => [f, ''])) as Record<Field, string>;

/**
 * "Add a price" (POST /admin/prices, docs/query.md "Prices"): a list price or a tenant's override, effective
 * now or from a later UTC time, audited with its reason. The API checks every field (rates as decimal
 * strings, no past start) and its message is shown next to the field it names.
 */
export function AddPriceForm() {
  const [draft, setDraft] = useState(EMPTY);
  const set = (field: Field) => (event: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [field]: event.target.value }));
  const optional = (field: Field) => draft[field].trim() || undefined;
  return (
    <ActionForm
      label="Add a price"
      fields={FIELDS}
      run={(reason) =>
        data(
          api.POST('/admin/prices', {
            body: {
              provider: draft.provider.trim(),
              model: draft.model.trim(),
              tenant_id: optional('tenant_id'),
              effective_from: utcInput(draft.effective_from),
              input_usd_per_million: draft.input_usd_per_million.trim(),
              output_usd_per_million: draft.output_usd_per_million.trim(),
              cached_input_usd_per_million: optional('cached_input_usd_per_million'),
              reasoning_usd_per_million: optional('reasoning_usd_per_million'),
              note: optional('note'),
              reason,
            },
          }),
        )
      }
      invalidate={[keys.prices.all()]}
    >
      {(errors) => (
        <>
          <div className="form-row">
            <TextField
              label="Provider"
              value={draft.provider}
              onChange={set('provider')}
              error={errors.provider}
              required
            />
            <TextField label="Model" value={draft.model} onChange={set('model')} error={errors.model} required />
          </div>
          <TextField
            label="Tenant (empty: the list price)"
            value={draft.tenant_id}
            onChange={set('tenant_id')}
            error={errors.tenant_id}
          />
          <TextField
            label="Effective from (UTC)"
            hint="Empty: now. Never in the past: to change past costs, add the price and reprice the period."
            type="datetime-local"
            value={draft.effective_from}
            onChange={set('effective_from')}
            error={errors.effective_from}
          />
          <div className="form-row">
            <TextField
              label="Input, USD per 1M tokens"
              inputMode="decimal"
              value={draft.input_usd_per_million}
              onChange={set('input_usd_per_million')}
              error={errors.input_usd_per_million}
              required
            />
            <TextField
              label="Output, USD per 1M tokens"
              inputMode="decimal"
              value={draft.output_usd_per_million}
              onChange={set('output_usd_per_million')}
              error={errors.output_usd_per_million}
              required
            />
          </div>
          <div className="form-row">
            <TextField
              label="Cached input (empty: input rate)"
              inputMode="decimal"
              value={draft.cached_input_usd_per_million}
              onChange={set('cached_input_usd_per_million')}
              error={errors.cached_input_usd_per_million}
            />
            <TextField
              label="Reasoning (empty: output rate)"
              inputMode="decimal"
              value={draft.reasoning_usd_per_million}
              onChange={set('reasoning_usd_per_million')}
              error={errors.reasoning_usd_per_million}
            />
          </div>
          <TextField
            label="Note (where the price comes from)"
            value={draft.note}
            onChange={set('note')}
            error={errors.note}
            maxLength={500}
          />
        </>
      )}
    </ActionForm>
  );
}
