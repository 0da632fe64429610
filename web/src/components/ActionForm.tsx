import '../overview/overview.css';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, type ReactNode, useEffect, useId, useRef, useState } from 'react';
import { ApiError } from '../api/client';
import { type FieldErrors, fieldErrors, NO_FIELD_ERRORS } from '../api/field-errors';

/**
 * A quick action behind a button: opens a small form asking for the reason (required, recorded in the
 * audit log) and any extra fields, posts through the query service's action routes, and shows the audit id
 * of the recorded action. Cached answers under `invalidate` are refetched after success.
 *
 * `fields` names the extra fields the API may refuse: `children` given as a function receives each one's
 * message (api/field-errors.ts) to show next to it, and the form's own message keeps only the rest.
 * `dialog` (its heading) opens the form as a modal dialog, for an action the user confirms knowingly; it
 * closes when done, leaving the audit id next to the button (whose label may then change with the state).
 */
export function ActionForm({
  label,
  context,
  submitLabel,
  run,
  invalidate,
  children,
  danger,
  fields = [],
  dialog,
}: {
  label: string;
  /** What the action applies to: part of the button's and form's accessible name, not shown. */
  context?: string;
  submitLabel?: string;
  run: (reason: string) => Promise<{ audit_id: string }>;
  invalidate: ReadonlyArray<readonly unknown[]>;
  children?: ReactNode | ((errors: FieldErrors['fields']) => ReactNode);
  danger?: boolean;
  fields?: readonly string[];
  dialog?: string;
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
      // A confirmed dialog closes; its audit id stays next to the button.
      if (dialog) setOpen(false);
    },
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    if (reason.trim()) mutation.mutate(reason.trim());
  }
  const errors = mutation.isError ? fieldErrors(mutation.error, fields) : NO_FIELD_ERRORS;
  if (!open) {
    const button = (
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
    return dialog && mutation.isSuccess ? (
      <span className="action-done">
        {button}
        <span className="notice" role="status" data-testid="action-done">
          Done · audit {mutation.data.audit_id}
        </span>
      </span>
    ) : (
      button
    );
  }
  const form = (
    <form className="action-form" onSubmit={submit} aria-label={context ? `${label} ${context}` : label}>
      {dialog ? <h2 id={`${id}-title`}>{dialog}</h2> : null}
      {typeof children === 'function' ? children(errors.fields) : children}
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
          {fields.length === 0
            ? mutation.error instanceof ApiError
              ? mutation.error.message
              : 'The action failed.'
            : (errors.rest ?? 'Check the fields marked above.')}
        </p>
      ) : null}
    </form>
  );
  return dialog ? (
    <Dialog labelledBy={`${id}-title`} onClose={() => setOpen(false)}>
      {form}
    </Dialog>
  ) : (
    form
  );
}

/** A modal dialog (the platform's <dialog>: focus kept inside, Escape closes it). */
function Dialog({ labelledBy, onClose, children }: { labelledBy: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} className="action-dialog" aria-labelledby={labelledBy} onClose={onClose}>
      {children}
    </dialog>
  );
}
