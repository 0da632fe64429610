import { useEffect } from 'react';
import { NavLink, Outlet } from 'react-router';
import { useWhoAmI } from '../api/hooks';
import { useSession } from '../auth/session';
import { NAVIGATION } from '../routes';

/** The signed-in frame: skip link, header with navigation (by permission), the page, and sign-out. */
export function Layout() {
  const { session, signOut } = useSession();
  const whoami = useWhoAmI();
  const permissions = whoami.data?.permissions ?? {};

  // A session whose token expires returns to sign-in at that moment, not at the next click.
  useEffect(() => {
    if (!session?.expiresAt) return;
    const timer = setTimeout(() => signOut('expired'), Math.max(0, session.expiresAt - Date.now()));
    return () => clearTimeout(timer);
  }, [session, signOut]);

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand">
          <img src="/favicon.svg" alt="" width="24" height="24" />
          AgentMeter
        </NavLink>
        <nav aria-label="Main">
          <ul>
            {NAVIGATION.filter(
              (item) =>
                !item.permission || (item.own ? permissions[item.permission] === 'own' : permissions[item.permission]),
            ).map((item) => (
              <li key={item.to}>
                <NavLink to={item.to.replace(':own', encodeURIComponent(whoami.data?.tenant_id ?? ''))} end={item.end}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          {whoami.data ? (
            <span className="who-name" data-testid="who">
              {whoami.data.subject} · {whoami.data.roles.join(', ')}
            </span>
          ) : null}
          <button type="button" className="button-secondary" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
