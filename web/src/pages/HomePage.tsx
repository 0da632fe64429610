import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, data } from '../api/client';
import { keys } from '../api/keys';
import { Empty, ErrorState, Loading, TableWrap } from '../components/states';
import { dateTime, duration, usd } from '../format';

/** /: the caller's recent runs, each linking to its run detail. */
export function HomePage() {
  const runs = useQuery({
    queryKey: keys.runs.list({ limit: '50' }),
    queryFn: () => data(api.GET('/runs', { params: { query: { limit: 50 } } })),
  });
  return (
    <div className="page">
      <h1>Runs</h1>
      {runs.isPending ? (
        <Loading label="Loading runs…" />
      ) : runs.isError ? (
        <ErrorState error={runs.error} what="runs" />
      ) : runs.data.items.length === 0 ? (
        <Empty title="No runs yet.">
          <p>Runs appear here as soon as a pipeline sends its first event.</p>
        </Empty>
      ) : (
        <TableWrap label="Most recent runs">
          <table className="nowrap">
            <caption className="visually-hidden">Most recent runs</caption>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Status</th>
                <th scope="col">Phase</th>
                <th scope="col" className="num">
                  Cost
                </th>
                <th scope="col" className="num">
                  Duration
                </th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {runs.data.items.map((run) => (
                <tr key={run.run_id}>
                  <td>
                    <Link to={`/runs/${encodeURIComponent(run.run_id)}`}>{run.run_id}</Link>
                  </td>
                  <td>
                    <span className={`status status-${run.status}`}>{run.status}</span>
                  </td>
                  <td>{run.phase ?? '—'}</td>
                  <td className="num">{usd(run.cost_usd)}</td>
                  <td className="num">{duration(run.duration_ms)}</td>
                  <td>{dateTime(run.started_at ?? run.first_event_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </div>
  );
}
