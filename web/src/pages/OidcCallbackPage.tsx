import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { completeOidcSignIn } from '../auth/oidc';
import { useSession } from '../auth/session';
import { Loading } from '../components/states';

/** /auth/callback: the identity provider's redirect back; exchanges the code and opens the session. */
export default function OidcCallbackPage() {
  const { signIn } = useSession();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    completeOidcSignIn()
      .then(({ accessToken, expiresAt, next }) => {
        signIn({ credential: accessToken, kind: 'oidc', expiresAt });
        void navigate(next, { replace: true });
      })
      .catch((reason: unknown) => setError(reason instanceof Error ? reason.message : String(reason)));
  }, [navigate, signIn]);

  return (
    <main className="sign-in" id="main">
      <div className="sign-in-card">
        <h1>Signing in…</h1>
        {error ? (
          <div role="alert">
            <p>Sign-in did not complete: {error}</p>
            <Link to="/sign-in">Back to sign-in</Link>
          </div>
        ) : (
          <Loading label="Completing sign-in with your identity provider…" />
        )}
      </div>
    </main>
  );
}
