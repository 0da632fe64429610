import { parseArgs } from 'node:util';
import { createDataSource, PricingRepository } from '@agentmeter/database';
import { formatUsd } from '@agentmeter/domain';

const USAGE = `usage: reprice --from <time> --to <time> [--model <model>] [--tenant <tenant_id>] --actor <who> --reason <why>
  Recomputes the cost of computed and unpriced llm_calls with from <= time < to (RFC 3339 times or
  YYYY-MM-DD days, UTC) at the prices stored now, and moves stages, runs and daily usage by the difference.
  Provided costs never change. DATABASE_URL names the database.`;

/** `make reprice FROM=... TO=... ACTOR=... REASON=... [MODEL=...] [TENANT=...]`: one audited reprice. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      model: { type: 'string' },
      tenant: { type: 'string' },
      actor: { type: 'string' },
      reason: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const { from, to, actor, reason } = values;
  if (!from || !to || !actor || !reason) throw new Error(`--from, --to, --actor and --reason are required\n${USAGE}`);
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/agentmeter';
  const db = await createDataSource({ url, poolSize: 1, applicationName: 'agentmeter-reprice' }).initialize();
  try {
    const result = await new PricingRepository(db).reprice({
      actor,
      reason,
      from: time('--from', from),
      to: time('--to', to),
      ...(values.model ? { model: values.model } : {}),
      ...(values.tenant ? { tenantId: values.tenant } : {}),
    });
    console.log(`reprice audit #${result.auditId}`);
    console.log(`calls considered: ${result.callsConsidered}, changed: ${result.callsAffected}`);
    console.log(`old total: ${formatUsd(result.oldTotalMicros)} USD (${result.oldUnpricedCalls} unpriced)`);
    console.log(`new total: ${formatUsd(result.newTotalMicros)} USD (${result.newUnpricedCalls} unpriced)`);
    console.log(`difference: ${formatUsd(result.newTotalMicros - result.oldTotalMicros)} USD`);
  } finally {
    await db.destroy();
  }
}

/** An RFC 3339 time with an offset, or a bare day meaning its UTC midnight. */
function time(flag: string, value: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(iso)) {
    throw new Error(`${flag}: not an RFC 3339 time with offset or a YYYY-MM-DD day: "${value}"`);
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new Error(`${flag}: invalid time "${value}"`);
  return date;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
