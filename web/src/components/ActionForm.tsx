import '../overview/overview.css';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, type ReactNode, useId, useState } from 'react';
import { ApiError } from '../api/client';

/**
 * A quick action behind a button: opens a small form asking for the reason (required, recorded in the
 * audit log) and any extra fields, posts through the query service's action routes, and shows the audit id
 * of the recorded action. Cached answers under `invalidate` are refetched after success.
 */
export function ActionForm({
  label,
  context,
  submitLabel,
  run,
  invalidate,
  children,
  danger,
}: {
  label: string;
  /** What the action applies to: part of the button's and form's accessible name, not shown. */
  context?: string;
  submitLabel?: string;
  run: (reason: string) => Promise<{ audit_id: string }>;
  invalidate: ReadonlyArray<readonly unknown[]>;
  children?: ReactNode;
  danger?: boolean;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const queryClient = useQueryClient();
  const id = useId();
  const mutation = useMutation({
    mutationFn: (why: string) => run(why),
    onSuccess: async () => {
      setReason('');
      await Promise.all(invalidate.map((key) => queryClient.invalidateQueries({ queryKey: key })));
    },
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    if (reason.trim()) mutation.mutate(reason.trim());
  }
  if (!open) {
    return (
      <button
        type="button"
        className={danger ? 'button-secondary danger' : 'button-secondary'}
        onClick={() => {
          mutation.reset();
          setOpen(true);
        }}
      >
        {label}
        {context ? <span className="visually-hidden"> {context}</span> : null}
      </button>
    );
  }
  return (
    <form className="action-form" onSubmit={submit} aria-label={context ? `${label} ${context}` : label}>
      {children}
      <label htmlFor={`${id}-reason`}>Reason (recorded in the audit log)</label>
      <input
        id={`${id}-reason`}
        value={reason}
        onChange={(e) => setReason(e.target.value)}
        required
        autoFocus
        maxLength={2000}
      />
      <div className="action-buttons">
        <button type="submit" className="button-primary" disabled={mutation.isPending || !reason.trim()}>
          {submitLabel ?? label}
          {context ? <span className="visually-hidden"> {context}</span> : null}
        </button>
        <button type="button" className="button-secondary" onClick={() => setOpen(false)}>
          Close
        </button>
      </div>
      {mutation.isSuccess ? (
        <p className="notice" role="status" data-testid="action-done">
          Done · audit {mutation.data.audit_id}
        </p>
      ) : null}
      {mutation.isError ? (
        <p className="field-error" role="alert">
          {mutation.error instanceof ApiError ? mutation.error.message : 'The action failed.'}
        </p>
      ) : null}
    </form>
  );
}
