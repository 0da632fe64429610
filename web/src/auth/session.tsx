import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from 'react';
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
  /** Why the last session ended in this tab (RequireSession sends the user to sign-in with it). */
  ended: 'signed-out' | 'expired' | null;
  signIn: (session: Session) => void;
  signOut: (reason?: 'expired') => void;
}

const Context = createContext<SessionApi | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(load);
  const [ended, setEnded] = useState<SessionApi['ended']>(null);
  const queryClient = useQueryClient();

  // Leaving the signed-in pages is RequireSession's job (routes.tsx): it sees no session and the reason.
  const signOut = useCallback(
    (reason?: 'expired') => {
      sessionStorage.removeItem(STORAGE);
      configureApi({ credential: null, onUnauthorized: () => undefined });
      setEnded(reason ?? 'signed-out');
      setSession(null);
      queryClient.clear();
    },
    [queryClient],
  );

  const signIn = useCallback((next: Session) => {
    sessionStorage.setItem(STORAGE, JSON.stringify(next));
    setEnded(null);
    setSession(next);
  }, []);

  // Configured during render so that the first queries of a page already carry the credential.
  configureApi({ credential: session?.credential ?? null, onUnauthorized: () => signOut('expired') });

  const value = useMemo(() => ({ session, ended, signIn, signOut }), [session, ended, signIn, signOut]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useSession(): SessionApi {
  const value = useContext(Context);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
