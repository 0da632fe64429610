import { lazy, Suspense, type ReactNode } from 'react';
import { Navigate, type RouteObject, useLocation } from 'react-router';
import { useSession } from './auth/session';
import { Layout } from './components/Layout';
import { Loading } from './components/states';
import { HomePage } from './pages/HomePage';
import { NotFoundPage } from './pages/NotFoundPage';
import { SignInPage } from './pages/SignInPage';

/**
 * The route table of the console: every page path, once. The query service serves index.html for the same
 * paths (services/query/src/console/pages.ts): add a page in both. Pages other than sign-in and home are
 * loaded on first use, so the initial JavaScript stays small (docs/benchmarks.md).
 */
const RunDetailPage = lazy(() => import('./pages/RunDetailPage'));
const LinkSignInPage = lazy(() => import('./pages/LinkSignInPage'));
const OidcCallbackPage = lazy(() => import('./pages/OidcCallbackPage'));
const AdminOverviewPage = lazy(() => import('./pages/AdminOverviewPage'));
const TenantOverviewPage = lazy(() => import('./pages/TenantOverviewPage'));
const ProjectOverviewPage = lazy(() => import('./pages/ProjectOverviewPage'));
const AnalyticsPage = lazy(() => import('./pages/AnalyticsPage'));
const PricesPage = lazy(() => import('./pages/PricesPage'));
const PromptAuditPage = lazy(() => import('./pages/PromptAuditPage'));

/** Links of the main navigation, shown when the caller holds the permission (API policy). */
export const NAVIGATION: Array<{ to: string; label: string; permission?: string; own?: boolean; end?: boolean }> = [
  { to: '/', label: 'Runs', permission: 'runs.read', end: true },
  // The caller's own tenant (':own' is its tenant id), for roles that see one tenant.
  { to: '/tenants/:own', label: 'Tenant', permission: 'tenant.overview', own: true },
  { to: '/admin', label: 'Admin', permission: 'admin.overview', end: true },
  { to: '/admin/prices', label: 'Prices', permission: 'prices.manage' },
  { to: '/analytics', label: 'Analytics', permission: 'analytics.costs' },
];

function page(element: ReactNode) {
  return <Suspense fallback={<Loading label="Loading page…" />}>{element}</Suspense>;
}

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
  { path: '/sign-in/link', element: page(<LinkSignInPage />) },
  { path: '/auth/callback', element: page(<OidcCallbackPage />) },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      { path: '/', element: <HomePage /> },
      { path: '/runs/:runId', element: page(<RunDetailPage />) },
      { path: '/admin', element: page(<AdminOverviewPage />) },
      { path: '/admin/prices', element: page(<PricesPage />) },
      { path: '/tenants/:tenantId', element: page(<TenantOverviewPage />) },
      { path: '/tenants/:tenantId/prompt-audit', element: page(<PromptAuditPage />) },
      { path: '/projects/:projectId', element: page(<ProjectOverviewPage />) },
      { path: '/analytics', element: page(<AnalyticsPage />) },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
];
