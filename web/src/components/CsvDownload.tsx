import { useState } from 'react';
import { currentCredential } from '../api/client';

/**
 * "Export CSV": the same API route as the panel's JSON, asked for text/csv (the server writes the rows),
 * saved as a file. Fetched with the session's credential, so it works with bearer tokens too.
 */
export function CsvDownload({ path, filename, label }: { path: string; filename: string; label: string }) {
  const [state, setState] = useState<'idle' | 'busy' | 'failed'>('idle');
  async function download() {
    setState('busy');
    try {
      const credential = currentCredential();
      const response = await fetch(path, {
        headers: { Accept: 'text/csv', ...(credential ? { Authorization: `Bearer ${credential}` } : {}) },
      });
      if (!response.ok) throw new Error(String(response.status));
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement('a');
      link.href = url;
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setState('idle');
    } catch {
      setState('failed');
    }
  }
  return (
    <span className="csv">
      <button type="button" className="button-secondary" onClick={() => void download()} disabled={state === 'busy'}>
        {label}
      </button>
      {state === 'failed' ? (
        <span className="field-error" role="alert">
          Export failed
        </span>
      ) : null}
    </span>
  );
}
