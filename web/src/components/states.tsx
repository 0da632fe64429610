import type { ReactNode } from 'react';
import { ApiError } from '../api/client';

/** Designed loading, empty and error states: a page is never blank. */
export function Loading({ label }: { label: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children}
    </div>
  );
}

export function ErrorState({ error, what }: { error: unknown; what: string }) {
  const status = error instanceof ApiError ? error.status : null;
  const message =
    status === 404
      ? 'It does not exist, or it is not one your role may see.'
      : status === 403
        ? `Your role may not see ${what}.`
        : error instanceof Error
          ? error.message
          : String(error);
  return (
    <div className="state state-error" role="alert">
      <p className="state-title">Could not load {what}</p>
      <p>{message}</p>
    </div>
  );
}

/** A page the caller's role may not use (GET /whoami says so, and the API would refuse): said, not crashed. */
export function NotAllowed({ what }: { what: string }) {
  return (
    <div className="state state-error" role="alert" data-testid="not-allowed">
      <p className="state-title">Not allowed</p>
      <p>Your role may not {what}. Ask an Admin if you need it.</p>
    </div>
  );
}

export function Panel({
  title,
  children,
  actions,
  id,
}: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
  id?: string;
}) {
  const headingId = `${id ?? title.toLowerCase().replace(/\W+/g, '-')}-heading`;
  return (
    <section className="panel" aria-labelledby={headingId} id={id}>
      <header className="panel-header">
        <h2 id={headingId}>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

/** A table that may scroll sideways on a phone: a named region reachable by keyboard. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
