import type { Schemas } from '../api/client';
import { Panel, TableWrap } from '../components/states';
import { count, duration } from '../format';
import { useNow } from '../hooks/useNow';

type Stage = Schemas['StageMetrics'];

/**
 * Latency panel (docs/console.md "Run detail"): elapsed time and attempts per stage, the longest highlighted. A running stage's
 * elapsed time counts every second from its start (by the server's clock); when the stream brings the
 * stage's end, the server's final elapsed time replaces the counter.
 */
export function LatencyPanel({
  run,
  skewMs,
  observability,
}: {
  run: Schemas['RunMetrics'];
  skewMs: number;
  observability: boolean;
}) {
  // A stage still marked running in a finished run never reported its end: no counter for it.
  const runLive = run.status === 'running';
  return (
    <Panel title="Latency" id="latency">
      {run.stages.length === 0 ? (
        <p className="muted">No stage has started yet.</p>
      ) : (
        <TableWrap label="Elapsed time and attempts per stage">
          <table>
            <caption className="visually-hidden">Elapsed time and attempts per stage</caption>
            <thead>
              <tr>
                <th scope="col">Stage</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Elapsed
                </th>
                <th scope="col" className="num">
                  Attempts
                </th>
                {observability ? <th scope="col">Trace</th> : null}
              </tr>
            </thead>
            <tbody>
              {run.stages.map((stage) => (
                <tr
                  key={stage.stage}
                  className={stage.longest ? 'highlight' : undefined}
                  data-testid={`latency-${stage.stage}`}
                  data-longest={stage.longest ? 'true' : undefined}
                >
                  <th scope="row">
                    {stage.stage}
                    {stage.longest ? <span className="tag">Longest</span> : null}
                  </th>
                  <td>
                    {stage.status === 'running' && !runLive ? (
                      <span className="status status-unknown">unfinished</span>
                    ) : (
                      <span className={`status status-${stage.status}`}>{stage.status}</span>
                    )}
                  </td>
                  <td className="num" data-testid={`elapsed-${stage.stage}`}>
                    {stage.status !== 'running' ? (
                      duration(stage.elapsed_ms)
                    ) : runLive ? (
                      <LiveElapsed stage={stage} skewMs={skewMs} />
                    ) : (
                      <span title="The run ended before this stage reported its end">—</span>
                    )}
                  </td>
                  <td className="num">{count(stage.attempts)}</td>
                  {observability ? (
                    <td>
                      {stage.trace_url ? (
                        <a href={stage.trace_url} target="_blank" rel="noopener noreferrer">
                          View trace <span className="visually-hidden">of {stage.stage} (opens in a new tab)</span>
                        </a>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Panel>
  );
}

function LiveElapsed({ stage, skewMs }: { stage: Stage; skewMs: number }) {
  const now = useNow(1_000);
  if (!stage.started_at) return <>—</>;
  const seconds = Math.max(0, Math.floor((now + skewMs - Date.parse(stage.started_at)) / 1000));
  return (
    <span className="live" data-live="true" data-seconds={seconds}>
      <span className="dot" aria-hidden="true" />
      {duration(seconds * 1000)}
    </span>
  );
}
