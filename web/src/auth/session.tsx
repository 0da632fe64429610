import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from 'react';
import { useNavigate } from 'react-router';
import { configureApi } from '../api/client';

/**
 * The console's session: one credential (an API key, a bearer token, a session token from a sign-in link,
 * or an OIDC access token) kept in sessionStorage, so it ends with the tab. A 401 from the API, or the
 * token's own expiry, ends it and returns to /sign-in (docs/console.md "Sign-in").
 */
export type SessionKind = 'key' | 'token' | 'link' | 'oidc';

export interface Session {
  credential: string;
  kind: SessionKind;
  /** Milliseconds since the epoch; null when unknown (API keys). */
  expiresAt: number | null;
}

const STORAGE = 'agentmeter.session';

function load(): Session | null {
  try {
    const session = JSON.parse(sessionStorage.getItem(STORAGE) ?? 'null') as Session | null;
    if (!session?.credential) return null;
    if (session.expiresAt !== null && session.expiresAt <= Date.now()) {
      sessionStorage.removeItem(STORAGE);
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

/** The expiry of a JWT (its exp claim), or null for anything else. Read only, never trusted: the API verifies. */
export function expiryOf(credential: string): number | null {
  const parts = credential.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(atob(parts[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

interface SessionApi {
  session: Session | null;
  signIn: (session: Session) => void;
  signOut: (reason?: 'expired') => void;
}

const Context = createContext<SessionApi | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(load);
  const queryClient = useQueryClient();
  const navigate = useNavigate();

  const signOut = useCallback(
    (reason?: 'expired') => {
      sessionStorage.removeItem(STORAGE);
      configureApi({ credential: null, onUnauthorized: () => undefined });
      setSession(null);
      queryClient.clear();
      void navigate(reason ? `/sign-in?reason=${reason}` : '/sign-in', { replace: true });
    },
    [navigate, queryClient],
  );

  const signIn = useCallback((next: Session) => {
    sessionStorage.setItem(STORAGE, JSON.stringify(next));
    setSession(next);
  }, []);

  // Configured during render so that the first queries of a page already carry the credential.
  configureApi({ credential: session?.credential ?? null, onUnauthorized: () => signOut('expired') });

  const value = useMemo(() => ({ session, signIn, signOut }), [session, signIn, signOut]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useSession(): SessionApi {
  const value = useContext(Context);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
