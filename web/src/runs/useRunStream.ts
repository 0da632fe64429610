import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { Schemas } from '../api/client';
import { keys } from '../api/keys';
import { readEventStream } from '../api/stream';

const RECONNECT_MS = 3_000;

/**
 * Follows a running run's stream (GET /runs/{run_id}/stream) and writes each `metrics` event into the
 * query cache under the same key the page reads, so panels update without a reload or a poll. Stops when
 * the server sends `end` for a terminal run; reconnects after the server's time limit or a dropped line.
 */
export function useRunStream(runId: string, running: boolean): boolean {
  const queryClient = useQueryClient();
  const [live, setLive] = useState(false);

  useEffect(() => {
    if (!running) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let finished = false;
    const connect = () => {
      setLive(true);
      readEventStream(
        `/runs/${encodeURIComponent(runId)}/stream`,
        ({ event, data }) => {
          if (event === 'metrics') {
            queryClient.setQueryData(keys.runs.metrics(runId), JSON.parse(data) as Schemas['RunMetrics']);
            void queryClient.invalidateQueries({ queryKey: keys.runs.events(runId) });
          } else if (event === 'end') {
            finished = (JSON.parse(data) as { reason: string }).reason.startsWith('run ');
          }
        },
        abort.signal,
      )
        .catch(() => undefined)
        .finally(() => {
          setLive(false);
          if (!finished && !abort.signal.aborted) timer = setTimeout(connect, RECONNECT_MS);
        });
    };
    connect();
    return () => {
      abort.abort();
      clearTimeout(timer);
      setLive(false);
    };
  }, [queryClient, runId, running]);

  return live;
}
