import { Link } from 'react-router';
import type { Answer } from '../api/client';
import { Empty } from '../components/states';
import { dateTime } from '../format';

type PromptAuditPage = Answer<'/tenants/{tenant_id}/prompt-audit'>;
type PromptText = PromptAuditPage['items'][number];

/**
 * One page of the tenant's stored prompt texts, newest first, as the API answers them: already redacted
 * (docs/security.md "Redaction and pseudonymisation"), never exported.
 */
export function PromptTexts({ page, enabled }: { page: PromptAuditPage; enabled: boolean }) {
  if (page.items.length === 0) {
    return (
      <Empty title="No prompt text is stored.">
        <p className="muted">
          {enabled
            ? 'Texts appear here once LLM calls carrying them are ingested.'
            : 'The prompt audit is off: turn it on to store the texts of the next LLM calls.'}
        </p>
      </Empty>
    );
  }
  return (
    <ol className="prompt-texts" data-testid="prompt-texts">
      {page.items.map((item) => (
        <PromptTextItem key={`${item.source}/${item.event_id}`} item={item} />
      ))}
    </ol>
  );
}

function PromptTextItem({ item }: { item: PromptText }) {
  return (
    <li className="prompt-text">
      <div className="prompt-head">
        <time dateTime={item.time}>{dateTime(item.time)}</time>
        <Link to={`/runs/${encodeURIComponent(item.run_id)}`}>Run {item.run_id}</Link>
        {item.phase ? <span className="tag">phase {item.phase}</span> : null}
        {item.role ? <span className="tag">role {item.role}</span> : null}
        <span className="muted">
          {item.provider} · {item.model}
        </span>
      </div>
      <Text label="Prompt" text={item.prompt} />
      <Text label="Completion" text={item.completion} />
    </li>
  );
}

function Text({ label, text }: { label: string; text: string | null }) {
  return (
    <div className="prompt-part">
      <p className="note">{label}</p>
      {text === null ? (
        <p className="muted">— (not sent)</p>
      ) : (
        <pre className="prompt-body" tabIndex={0} aria-label={label}>
          {text}
        </pre>
      )}
    </div>
  );
}
