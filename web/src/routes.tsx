import type { ComponentType, ReactNode } from 'react';
import { Navigate, type RouteObject, useLocation } from 'react-router';
import { useSession } from './auth/session';
import { Layout } from './components/Layout';
import { HomePage } from './pages/HomePage';
import { NotFoundPage } from './pages/NotFoundPage';
import { SignInPage } from './pages/SignInPage';

/**
 * The route table of the console: every page path, once. The query service serves index.html for the same
 * paths (services/query/src/console/pages.ts): add a page in both. Pages other than sign-in and home are
 * loaded on first use, so the initial JavaScript stays small (docs/benchmarks.md).
 */
/** A page loaded on first use: the router fetches its module before rendering the route, so no Suspense fallback
 * is shown (React holds a revealed fallback for at least 300 ms, which a cold load would wait out). */
function lazyPage(load: () => Promise<{ default: ComponentType }>): RouteObject['lazy'] {
  return async () => ({ Component: (await load()).default });
}

/** Links of the main navigation, shown when the caller holds the permission (API policy). */
export const NAVIGATION: Array<{ to: string; label: string; permission?: string; own?: boolean; end?: boolean }> = [
  { to: '/', label: 'Runs', permission: 'runs.read', end: true },
  // The caller's own tenant (':own' is its tenant id), for roles that see one tenant.
  { to: '/tenants/:own', label: 'Tenant', permission: 'tenant.overview', own: true },
  { to: '/admin', label: 'Admin', permission: 'admin.overview', end: true },
  { to: '/admin/prices', label: 'Prices', permission: 'prices.manage' },
  { to: '/analytics', label: 'Analytics', permission: 'analytics.costs' },
];

function RequireSession({ children }: { children: ReactNode }) {
  const { session, ended } = useSession();
  const location = useLocation();
  if (!session) {
    const to =
      ended === 'expired'
        ? '/sign-in?reason=expired'
        : ended === 'signed-out'
          ? '/sign-in'
          : `/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`;
    return <Navigate to={to} replace />;
  }
  return children;
}

export const routes: RouteObject[] = [
  { path: '/sign-in', element: <SignInPage /> },
  { path: '/sign-in/link', lazy: lazyPage(() => import('./pages/LinkSignInPage')) },
  { path: '/auth/callback', lazy: lazyPage(() => import('./pages/OidcCallbackPage')) },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      { path: '/', element: <HomePage /> },
      { path: '/runs/:runId', lazy: lazyPage(() => import('./pages/RunDetailPage')) },
      { path: '/admin', lazy: lazyPage(() => import('./pages/AdminOverviewPage')) },
      { path: '/admin/prices', lazy: lazyPage(() => import('./pages/PricesPage')) },
      { path: '/tenants/:tenantId', lazy: lazyPage(() => import('./pages/TenantOverviewPage')) },
      { path: '/tenants/:tenantId/prompt-audit', lazy: lazyPage(() => import('./pages/PromptAuditPage')) },
      { path: '/projects/:projectId', lazy: lazyPage(() => import('./pages/ProjectOverviewPage')) },
      { path: '/analytics', lazy: lazyPage(() => import('./pages/AnalyticsPage')) },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
];
