import { Link } from 'react-router';
import { Empty } from '../components/states';

export function NotFoundPage() {
  return (
    <div className="page">
      <h1>Page not found</h1>
      <Empty title="There is no console page at this address.">
        <Link to="/">Back to runs</Link>
      </Empty>
    </div>
  );
}
