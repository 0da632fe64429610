import { z } from 'zod';
import { InvalidRequestError } from '@agentmeter/http';

/**
 * Opaque keyset cursors: the sort key of the last row of a page, base64url JSON. They carry no tenant (the
 * tenant comes from the credential), so a forged cursor can only move within what the caller may read.
 */
export function encodeCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

const CursorValues = z
  .array(z.union([z.string().max(500), z.number()]))
  .min(1)
  .max(4);

export function decodeCursor(cursor: string | undefined, arity: number): Array<string | number> | null {
  if (cursor === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidRequestError('cursor: not a cursor of this API');
  }
  const values = CursorValues.safeParse(parsed);
  if (!values.success || values.data.length !== arity)
    throw new InvalidRequestError('cursor: not a cursor of this API');
  return values.data;
}
