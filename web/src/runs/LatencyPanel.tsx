import type { Schemas } from '../api/client';
import { Panel } from '../components/states';
import { count, duration } from '../format';
import { useNow } from '../hooks/useNow';

type Stage = Schemas['StageMetrics'];

/**
 * Seed 000 story 9.2: elapsed time and attempts per stage, the longest highlighted. A running stage's
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
  const anyRunning = run.stages.some((stage) => stage.status === 'running' && stage.started_at);
  return (
    <Panel title="Latency" id="latency">
      {run.stages.length === 0 ? (
        <p className="muted">No stage has started yet.</p>
      ) : (
        <div className="table-wrap">
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
                    <span className={`status status-${stage.status}`}>{stage.status}</span>
                  </td>
                  <td className="num" data-testid={`elapsed-${stage.stage}`}>
                    {anyRunning && stage.status === 'running' ? (
                      <LiveElapsed stage={stage} skewMs={skewMs} />
                    ) : (
                      duration(stage.elapsed_ms)
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
        </div>
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
