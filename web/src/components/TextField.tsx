import { type InputHTMLAttributes, useId } from 'react';

/**
 * A labelled input of a form, with its hint and the API's message about it (api/field-errors.ts) right
 * below, tied to the input (aria-describedby, aria-invalid) so a screen reader reads why it was refused.
 */
export function TextField({
  label,
  hint,
  error,
  ...input
}: { label: string; hint?: string; error?: string } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  const described = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(' ');
  return (
    <div className="text-field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={described || undefined} {...input} />
      {hint ? (
        <span id={`${id}-hint`} className="note">
          {hint}
        </span>
      ) : null}
      {error ? (
        <span id={`${id}-error`} className="field-error" data-testid="field-error">
          {error}
        </span>
      ) : null}
    </div>
  );
}
