import { ago, dateTime } from '../format';
import { useNow } from '../hooks/useNow';

/** How fresh the shown numbers are: when ingest last updated them, and whether a live stream is attached. */
export function LastSyncedBadge({ syncedAt, live }: { syncedAt: string; live: boolean }) {
  const now = useNow(5_000);
  return (
    <span className={`badge ${live ? 'badge-live' : ''}`} title={dateTime(syncedAt)} data-testid="last-synced">
      {live ? <span className="dot" aria-hidden="true" /> : null}
      {live ? 'Live · ' : ''}synced {ago(syncedAt, now)}
    </span>
  );
}
