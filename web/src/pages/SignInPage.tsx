import { useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { Navigate, useSearchParams } from 'react-router';
import { api, configureApi, data } from '../api/client';
import { keys } from '../api/keys';
import { expiryOf, useSession } from '../auth/session';

/**
 * /sign-in: with an OIDC issuer configured, "Sign in with <issuer>" (Authorization Code + PKCE); always, a
 * form for an API key or bearer token, checked with GET /whoami before it is kept.
 */
export function SignInPage() {
  const { session, signIn } = useSession();
  const [params] = useSearchParams();
  const next = params.get('next') ?? '/';
  const settings = useQuery({
    queryKey: keys.settings(),
    queryFn: () => data(api.GET('/console/settings')),
    staleTime: Infinity,
  });
  const [credential, setCredential] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  if (session) return <Navigate to={next.startsWith('/') ? next : '/'} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const value = credential.trim();
    if (!value) return setError('Enter an API key or a token.');
    setBusy(true);
    setError(null);
    configureApi({ credential: value, onUnauthorized: () => undefined });
    try {
      await data(api.GET('/whoami'));
      const expiresAt = expiryOf(value);
      signIn({ credential: value, kind: expiresAt ? 'token' : 'key', expiresAt });
    } catch {
      configureApi({ credential: null, onUnauthorized: () => undefined });
      setError('This key or token was not accepted.');
    } finally {
      setBusy(false);
    }
  };

  const oidc = settings.data?.oidc;
  return (
    <main className="sign-in" id="main">
      <div className="sign-in-card">
        <h1>
          <img src="/favicon.svg" alt="" width="32" height="32" /> Sign in to AgentMeter
        </h1>
        {params.get('reason') === 'expired' ? (
          <p className="notice" role="status">
            Your session has ended. Sign in again.
          </p>
        ) : null}
        {oidc ? (
          <>
            <button
              type="button"
              className="button-primary wide"
              onClick={() => void import('../auth/oidc').then(({ startOidcSignIn }) => startOidcSignIn(oidc, next))}
            >
              Sign in with {new URL(oidc.issuer).host}
            </button>
            <p className="or">or</p>
          </>
        ) : null}
        <form onSubmit={(event) => void submit(event)} noValidate>
          <label htmlFor="credential">API key or token</label>
          <input
            id="credential"
            name="credential"
            type="password"
            autoComplete="off"
            value={credential}
            onChange={(event) => setCredential(event.target.value)}
            aria-describedby={error ? 'credential-error' : 'credential-help'}
            aria-invalid={error ? true : undefined}
          />
          <p id="credential-help" className="muted">
            An API key (amk_…) or a bearer token. Kept in this tab only.
          </p>
          {error ? (
            <p id="credential-error" className="field-error" role="alert">
              {error}
            </p>
          ) : null}
          <button type="submit" className="button-primary wide" disabled={busy}>
            {busy ? 'Checking…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}
