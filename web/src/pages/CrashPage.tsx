import { useRouteError } from 'react-router';

/** Shown when a page fails while rendering: what happened and a way on, never a blank screen. */
export function CrashPage() {
  const error = useRouteError();
  return (
    <main className="sign-in" id="main">
      <div className="sign-in-card" role="alert">
        <h1>Something went wrong</h1>
        <p>This page failed to show: {error instanceof Error ? error.message : String(error)}</p>
        <p>
          <a href="/">Back to runs</a>
        </p>
      </div>
    </main>
  );
}
