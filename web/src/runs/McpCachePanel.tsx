import type { Schemas } from '../api/client';
import { Panel, TableWrap } from '../components/states';
import { count, percent } from '../format';

/** MCP cache panel (docs/console.md "Run detail"): hits, misses and ratio per key space and overall, or that no MCP call was made. */
export function McpCachePanel({ cache }: { cache: Schemas['RunMetrics']['mcp_cache'] }) {
  return (
    <Panel title="MCP cache" id="mcp-cache">
      {!cache ? (
        <p className="muted" data-testid="no-mcp">
          No MCP calls in this run
        </p>
      ) : (
        <>
          <p className="big-number" data-testid="mcp-overall">
            {cache.overall_hit_pct.toFixed(1)} % <span className="muted">overall cache hits</span>
          </p>
          <TableWrap label="Cache hits and misses per key space">
            <table>
              <caption className="visually-hidden">Cache hits and misses per key space</caption>
              <thead>
                <tr>
                  <th scope="col">Key space</th>
                  <th scope="col" className="num">
                    Hits
                  </th>
                  <th scope="col" className="num">
                    Misses
                  </th>
                  <th scope="col" className="num">
                    Hit ratio
                  </th>
                </tr>
              </thead>
              <tbody>
                {(
                  [
                    ['amtp:mcp:tree:*', cache.tree],
                    ['amtp:mcp:blob:*', cache.blob],
                  ] as const
                ).map(([name, space]) => (
                  <tr key={name} data-testid={`mcp-${name.split(':')[2]}`}>
                    <th scope="row">
                      <code>{name}</code>
                    </th>
                    <td className="num">{count(space.hits)} hits</td>
                    <td className="num">{count(space.misses)} misses</td>
                    <td className="num">{percent(space.ratio)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      )}
    </Panel>
  );
}
