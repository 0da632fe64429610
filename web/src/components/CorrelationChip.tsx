import { useState } from 'react';

/** An id (run, tenant, project, trace) shown short, copied whole with one click or key press. */
export function CorrelationChip({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  };
  return (
    <span className="chip" data-testid={`chip-${label}`}>
      <span className="chip-label">{label}</span>
      <code className="chip-value" title={value}>
        {value}
      </code>
      <button type="button" className="chip-copy" onClick={() => void copy()} aria-label={`Copy ${label} ${value}`}>
        {copied ? 'Copied' : 'Copy'}
      </button>
    </span>
  );
}
