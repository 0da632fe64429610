import { ApiError } from './client';

/** An API refusal split by the fields it names: each field's message, and what names no field of the form. */
export interface FieldErrors {
  fields: Readonly<Record<string, string>>;
  rest: string | null;
}

export const NO_FIELD_ERRORS: FieldErrors = { fields: {}, rest: null };

/**
 * The query API's 4xx problem+json names each bad field in its detail, `field: why` separated by "; "
 * (libs/http validation.ts, and the services' own checks such as `effective_from: must be now or later`),
 * after an optional `invalid request body: `. A part that does not start with one of `names` continues the
 * previous message (a message may itself contain "; "). Anything else, and any other error, is `rest`.
 */
export function fieldErrors(error: unknown, names: readonly string[]): FieldErrors {
  if (!error) return NO_FIELD_ERRORS;
  if (!(error instanceof ApiError) || error.status >= 500 || !error.detail) {
    return { fields: {}, rest: error instanceof Error ? error.message : String(error) };
  }
  const fields: Record<string, string> = {};
  const rest: string[] = [];
  let last: { field: string | null } = { field: null };
  for (const part of error.detail.replace(/^invalid request( body)?: /, '').split('; ')) {
    const match = /^([a-z_][a-z0-9_.]*): (.*)$/s.exec(part);
    const field = match && names.includes(match[1]!) ? match[1]! : null;
    if (field && match) {
      fields[field] = fields[field] ? `${fields[field]}; ${match[2]}` : match[2]!;
      last = { field };
    } else if (last.field && !match) {
      fields[last.field] = `${fields[last.field]}; ${part}`;
    } else {
      rest.push(part);
      last = { field: null };
    }
  }
  return {
    fields,
    rest: rest.length > 0 ? `${error.title}: ${rest.join('; ')}` : null,
  };
}
