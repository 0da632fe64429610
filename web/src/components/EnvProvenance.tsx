/** Where a run executed (environment name, region, version), from its run_started event. */
export function EnvProvenance({ environment }: { environment: Record<string, string> | null | undefined }) {
  const entries = Object.entries(environment ?? {});
  if (entries.length === 0) return <span className="muted">Environment not reported</span>;
  return (
    <dl className="env" aria-label="Environment">
      {entries.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
