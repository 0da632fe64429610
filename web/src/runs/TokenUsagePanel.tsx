import { useState } from 'react';
import type { Schemas } from '../api/client';
import { Panel, TableWrap } from '../components/states';
import { tokens } from '../format';

const IN_PROGRESS = 'Stage in progress — token usage will appear when complete';
const UNFINISHED = 'The run ended before this stage reported its end; its tokens count in the total above';

/** Token usage panel (docs/console.md "Run detail"): collapsed by default; total and per-stage prompt/completion/total tokens. */
export function TokenUsagePanel({ run }: { run: Schemas['RunMetrics'] }) {
  const [open, setOpen] = useState(false);
  const hidden = run.totals.total_tokens === undefined;
  return (
    <Panel
      title="Token usage"
      id="token-usage"
      actions={
        <button
          type="button"
          className="button-secondary"
          aria-expanded={open}
          aria-controls="token-usage-body"
          onClick={() => setOpen(!open)}
        >
          {open ? 'Hide token usage' : 'Show token usage'}
        </button>
      }
    >
      <div id="token-usage-body" hidden={!open} data-testid="token-usage-body">
        {hidden ? (
          <p className="muted">This tenant shows Owners cost and time only, not token counts.</p>
        ) : (
          <>
            <p className="big-number" data-testid="total-tokens">
              {tokens(run.totals.total_tokens)}{' '}
              <span className="muted">
                ({tokens(run.totals.prompt_tokens)} prompt + {tokens(run.totals.completion_tokens)} completion)
              </span>
            </p>
            <TableWrap label="Tokens per stage">
              <table>
                <caption className="visually-hidden">Tokens per stage</caption>
                <thead>
                  <tr>
                    <th scope="col">Stage</th>
                    <th scope="col" className="num">
                      Prompt
                    </th>
                    <th scope="col" className="num">
                      Completion
                    </th>
                    <th scope="col" className="num">
                      Total
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {run.stages.map((stage) => {
                    const running = stage.status === 'running';
                    return (
                      <tr key={stage.stage} data-testid={`tokens-${stage.stage}`}>
                        <th scope="row">
                          {stage.stage}
                          {running ? (
                            <span className="note">{run.status === 'running' ? IN_PROGRESS : UNFINISHED}</span>
                          ) : null}
                        </th>
                        <td className="num">{running ? '—' : tokens(stage.prompt_tokens)}</td>
                        <td className="num">{running ? '—' : tokens(stage.completion_tokens)}</td>
                        <td className="num">{running ? '—' : tokens(stage.total_tokens)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </TableWrap>
          </>
        )}
      </div>
    </Panel>
  );
}
