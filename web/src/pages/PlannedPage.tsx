import { Empty } from '../components/states';

/** A page whose route exists (served, linked, role-checked) and whose content is still to be built. */
export default function PlannedPage({ title }: { title: string }) {
  return (
    <div className="page">
      <h1>{title}</h1>
      <Empty title="This page is not built yet.">
        <p>Its data is already available from the query API (see /docs).</p>
      </Empty>
    </div>
  );
}
