import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { api, data } from '../api/client';
import { useSession } from '../auth/session';
import { Loading } from '../components/states';

/**
 * /sign-in/link#code=…: a one-click local sign-in link (`make up` prints one). The code is in the fragment,
 * so it never reaches a server log; it is posted once and removed from the address bar at once.
 */
export default function LinkSignInPage() {
  const { signIn } = useSession();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const code = new URLSearchParams(window.location.hash.slice(1)).get('code');
    window.history.replaceState(null, '', '/sign-in/link');
    if (!code) {
      setError('This link carries no sign-in code.');
      return;
    }
    data(api.POST('/console/sessions', { body: { code } }))
      .then(({ token, expires_at }) => {
        signIn({ credential: token, kind: 'link', expiresAt: Date.parse(expires_at) });
        void navigate('/', { replace: true });
      })
      .catch(() => setError('This sign-in link is invalid, has expired or was already used.'));
  }, [navigate, signIn]);

  return (
    <main className="sign-in" id="main">
      <div className="sign-in-card">
        <h1>Signing in…</h1>
        {error ? (
          <div role="alert">
            <p>{error}</p>
            <Link to="/sign-in">Sign in another way</Link>
          </div>
        ) : (
          <Loading label="Opening your session…" />
        )}
      </div>
    </main>
  );
}
