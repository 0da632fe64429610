import '../prices/prices.css';
import { useSearchParams } from 'react-router';
import { usePermission, useWhoAmI } from '../api/hooks';
import { Loading, NotAllowed } from '../components/states';
import { AddPriceForm } from '../prices/AddPriceForm';
import { type PriceFilters, PriceTable } from '../prices/PriceTable';
import { RepricesPanel } from '../prices/RepricesPanel';

/**
 * /admin/prices (docs/console.md "Prices"), Admin only: the price table by provider and model with its
 * effective dates and history, adding a price effective from a time, retiring one, and reprices with
 * their status. Every change is audited with its reason (docs/query.md "Prices").
 */
export default function PricesPage() {
  const whoami = useWhoAmI();
  const mayManage = usePermission('prices.manage');
  const [params, setParams] = useSearchParams();
  const filters: PriceFilters = {
    provider: params.get('provider') || undefined,
    model: params.get('model') || undefined,
    history: params.get('history') === 'true' ? 'true' : undefined,
  };
  if (whoami.isPending) return <Loading label="Loading…" />;
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <p className="eyebrow">Platform</p>
          <h1>Prices</h1>
          <p className="muted">Rates in US dollars per million tokens · times in UTC</p>
        </div>
        {mayManage ? (
          <div className="page-header-side">
            <AddPriceForm />
          </div>
        ) : null}
      </header>
      {mayManage ? (
        <>
          <PriceTable
            filters={filters}
            onFilters={(next) =>
              setParams(new URLSearchParams(Object.entries(next).filter((e): e is [string, string] => Boolean(e[1]))), {
                replace: true,
              })
            }
          />
          <RepricesPanel />
        </>
      ) : (
        <NotAllowed what="manage prices" />
      )}
    </div>
  );
}
