/**
 * The console benchmark's baseline pages (bench/console.bench.ts): the least a browser page does to show
 * the same content as the console's page. Static HTML with an inline script and no framework: it reads the
 * same credential the console keeps (sessionStorage `agentmeter.session`), fetches the same API answers
 * (JSON, same origin through console-baseline-server.ts) in parallel, and renders the same headline numbers
 * and first rows with plain DOM calls, marked with the same test ids the benchmark waits for.
 */
export type BaselinePage = 'run' | 'admin' | 'analytics';

const COMMON = `
const credential = JSON.parse(sessionStorage.getItem('agentmeter.session')).credential;
const get = (path) => fetch(path, { headers: { authorization: 'Bearer ' + credential, accept: 'application/json' } })
  .then((r) => { if (!r.ok) throw new Error(path + ': ' + r.status); return r.json(); });
const el = (tag, text, attrs) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
};
const usd = (s) => '$' + s;
const count = (n) => n.toLocaleString('en-US');
const main = document.querySelector('main');
`;

/** The event types the console's timeline asks for (MILESTONE_TYPES, web/src/runs/Timeline.tsx). */
const MILESTONE_TYPES = [
  'run_started',
  'phase_entered',
  'phase_advanced',
  'artifact_written',
  'validation_failed',
  'publish_done',
  'run_finished',
  'run_failed',
  'cap_hit',
  'user_override',
  'cap_warning',
  'impersonation_started',
  'impersonation_ended',
  'proof_due',
  'proof_completed',
  'task_dequeued',
  'external_charge',
];

const SCRIPTS: Record<BaselinePage, string> = {
  // GET /runs/{id}/metrics and the first 500 milestones: status, cost, tokens, then the milestones.
  run: `
const runId = decodeURIComponent(location.pathname.split('/').pop());
const [run, events] = await Promise.all([
  get('/runs/' + encodeURIComponent(runId) + '/metrics'),
  get('/runs/' + encodeURIComponent(runId) + '/events?limit=500&types=${MILESTONE_TYPES.join(',')}'),
]);
const h1 = el('h1', run.run_id + ' ');
h1.append(el('span', run.status, { 'data-testid': 'run-status' }));
main.append(h1);
main.append(el('p', usd(run.totals.cost_usd) + ' over ' + count(run.totals.llm_calls) + ' LLM calls', { 'data-testid': 'run-cost' }));
main.append(el('p', count(run.totals.total_tokens ?? 0) + ' tokens'));
const ol = el('ol', undefined, { 'data-testid': 'timeline' });
for (const e of events.items) {
  if (e.type === 'llm_call' || e.type === 'tool_call') continue;
  const li = el('li');
  li.append(el('time', e.time), ' ', el('span', e.type), ' ', el('span', e.phase ?? ''));
  ol.append(li);
}
main.append(ol);`,
  // GET /admin/overview: spend today, per tenant, and the 7-day trend.
  admin: `
const o = await get('/admin/overview');
main.append(el('p', usd(o.spend_today.total_usd), { 'data-testid': 'spend-total' }));
const table = el('table', undefined, { 'data-testid': 'spend-by-tenant' });
const body = table.appendChild(el('tbody'));
for (const t of o.spend_today.by_tenant) {
  const tr = el('tr');
  tr.append(el('th', t.tenant_id), el('td', usd(t.cost_usd)));
  body.append(tr);
}
main.append(table);
main.append(el('p', usd(o.trends.last_7_days.cost_usd), { 'data-testid': 'trend-cost-7' }));`,
  // The analytics answers the console's page asks for (7 days), their headline numbers and rows.
  analytics: `
const a = '/api/v1/analytics/';
const [agents, costs, ranked, hours, tools, health, breakers, rates] = await Promise.all([
  get(a + 'usage?period=7d&group_by=agent'),
  get(a + 'costs?period=7d&group_by=agent&interval=day'),
  get(a + 'costs?period=7d&group_by=agent'),
  get(a + 'tool-calls/hours?period=7d'),
  get(a + 'usage?period=7d&group_by=tool&kind=tool&interval=day'),
  get(a + 'mcp-health?period=7d'),
  get(a + 'mcp-breaker-events?period=7d'),
  get(a + 'error-rates?period=7d&interval=day'),
]);
const top = el('ul', undefined, { id: 'top-agents' });
for (const r of [...agents.rows].sort((x, y) => y.calls - x.calls).slice(0, 10)) {
  top.append(el('li', (r.key ?? 'unattributed') + ' ' + count(r.calls) + ' calls · ' + usd(r.cost_usd), { class: 'bar-row' }));
}
main.append(top);
main.append(el('p', usd(costs.totals.cost_usd), { 'data-testid': 'cost-total' }));
main.append(el('p', ranked.rows.slice(0, 5).map((r) => r.key ?? 'unattributed').join(', ')));
main.append(el('p', count(hours.totals.calls) + ' calls', { 'data-testid': 'tool-calls-total' }));
main.append(el('p', count(new Set(tools.rows.map((r) => r.key)).size) + ' tools'));
const servers = el('table', undefined, { 'data-testid': 'mcp-servers' });
for (const s of health.servers) {
  const tr = el('tr');
  tr.append(el('th', s.server), el('td', count(s.calls)), el('td', (s.error_rate * 100).toFixed(1) + ' %'), el('td', count(s.breaker_openings)));
  servers.append(tr);
}
main.append(servers);
main.append(el('p', breakers.rows.length + ' breaker events'));
main.append(el('p', (rates.totals.tool_error_rate * 100).toFixed(1) + ' %', { 'data-testid': 'tool-error-rate' }));`,
};

export function baselinePage(page: BaselinePage): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>baseline</title></head>
<body><main></main>
<script type="module">${COMMON}${SCRIPTS[page]}</script>
</body>
</html>
`;
}
