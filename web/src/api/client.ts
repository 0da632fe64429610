import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

/**
 * The one API client of the console: typed from the query service's OpenAPI document (generated into
 * schema.d.ts by the build), same origin, the session's credential on every call. A 401 ends the session
 * (sign-in again); other errors are thrown as ApiError for the pages' error states.
 */
type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never;
/** The JSON answer of GET on a path, for answers documented inline rather than as named schemas. */
export type Answer<P extends keyof paths> = paths[P] extends { get: { responses: { 200: infer R } } } ? Json<R> : never;

export type Schemas = components['schemas'] & {
  EventPage: Answer<'/runs/{run_id}/events'>;
  TimelineEvent: Answer<'/runs/{run_id}/events'>['items'][number];
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

let credential: string | null = null;
let onUnauthorized: () => void = () => undefined;

/** Set by the session (auth/session.tsx): the credential to send and what to do when it is refused. */
export function configureApi(next: { credential: string | null; onUnauthorized: () => void }): void {
  credential = next.credential;
  onUnauthorized = next.onUnauthorized;
}

export function currentCredential(): string | null {
  return credential;
}

const auth: Middleware = {
  onRequest({ request }) {
    if (credential) request.headers.set('Authorization', `Bearer ${credential}`);
    request.headers.set('Accept', 'application/json');
    return request;
  },
  async onResponse({ response }) {
    if (response.ok) return response;
    if (response.status === 401 && credential) onUnauthorized();
    const problem = (await response
      .clone()
      .json()
      .catch(() => ({}))) as { title?: string; detail?: string };
    throw new ApiError(response.status, problem.title ?? response.statusText, problem.detail);
  },
};

export const api = createClient<paths>({ baseUrl: '' });
api.use(auth);

/** The data of a typed call, whose errors the middleware has already thrown. */
export async function data<T>(call: Promise<{ data?: T }>): Promise<T> {
  const result = await call;
  if (result.data === undefined) throw new ApiError(500, 'Empty answer', undefined);
  return result.data;
}
