import type { AlertAudience, AlertMessage, AlertMessageItem, AlertSeverity } from '@agentmeter/contracts';

/**
 * Delivery policy of alert messages (docs/alert.md "Queues, retries, dead letters"): how long to wait before the next attempt, which
 * failures are worth retrying, and how a group of alerts reads as one message.
 */

export interface BackoffPolicy {
  /** Delay before the second attempt, before jitter. */
  baseMs: number;
  /** No computed delay exceeds this (a server's Retry-After may). */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": half of base * 2^(attempt-1) (capped) is kept, the other half is
 * random, so retries of many deliveries spread out while each still waits at least half the step.
 * `failedAttempts` counts the attempts made so far (1 after the first failure).
 */
export function backoffDelayMs(failedAttempts: number, policy: BackoffPolicy, random: () => number): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 30);
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const half = step / 2;
  return Math.round(half + random() * half);
}

/** Longest Retry-After honoured; a server asking for more is waited on for this long. */
const MAX_RETRY_AFTER_MS = 60 * 60_000;

/**
 * The wait a Retry-After header asks for (RFC 9110: delay-seconds or an HTTP-date), or null when absent
 * or unreadable.
 */
export function retryAfterMs(header: string | null | undefined, now: Date): number | null {
  if (!header) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.min(Math.max(0, at - now.getTime()), MAX_RETRY_AFTER_MS);
}

export type AttemptVerdict = 'sent' | 'retry' | 'permanent';

/**
 * What an HTTP answer of a webhook or Slack means for the delivery: 2xx is done; 408, 425, 429 and 5xx are
 * worth another attempt; any other status (404 gone, 410 archived, 400 bad payload, 401/403 revoked) will
 * not change by retrying, so the delivery stops.
 */
export function httpVerdict(status: number): AttemptVerdict {
  if (status >= 200 && status < 300) return 'sent';
  if (status === 408 || status === 425 || status === 429 || status >= 500) return 'retry';
  return 'permanent';
}

/**
 * What an SMTP failure means: a 5xx reply (mailbox unknown, message refused) is permanent; a 4xx reply,
 * a refused or dropped connection, a timeout or a DNS failure is transient.
 */
export function smtpVerdict(error: { responseCode?: number; code?: string }): Exclude<AttemptVerdict, 'sent'> {
  if (typeof error.responseCode === 'number' && error.responseCode >= 500 && error.responseCode < 600) {
    return 'permanent';
  }
  if (error.code === 'EENVELOPE' && typeof error.responseCode !== 'number') return 'permanent';
  return 'retry';
}

const SEVERITY_RANK: Record<AlertSeverity, number> = { info: 0, warning: 1, critical: 2 };

export interface GroupedMessageInput {
  deliveryId: string;
  tenantId: string;
  rule: string;
  audience: AlertAudience;
  items: readonly AlertMessageItem[];
  /** The summary of what a mute silenced, delivered when it ended: the mute and its span. */
  muted?: { by: string; from: Date; until: Date };
}

/** One message for a group: the highest severity, a subject that counts, and one line per alert. */
export function renderGroupedMessage(input: GroupedMessageInput): AlertMessage {
  const severity = input.items.reduce<AlertSeverity>(
    (worst, item) => (SEVERITY_RANK[item.severity] > SEVERITY_RANK[worst] ? item.severity : worst),
    'info',
  );
  const firing = input.items.filter((item) => item.kind !== 'resolved');
  const resolved = input.items.filter((item) => item.kind === 'resolved');
  const first = input.items[0];
  const tenant = input.tenantId === '*' ? 'platform' : `tenant ${input.tenantId}`;
  const counts = [
    firing.length > 0 ? `${firing.length} firing` : '',
    resolved.length > 0 ? `${resolved.length} resolved` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (input.muted) return renderMutedSummary(input, input.muted, severity, tenant);
  const subject =
    input.items.length === 1 && first
      ? `[AgentMeter ${severity}] ${first.kind === 'resolved' ? 'Resolved: ' : ''}${first.title} (${tenant})`
      : `[AgentMeter ${severity}] ${first?.title ?? input.rule}: ${counts} (${tenant})`;
  const line = (item: AlertMessageItem) =>
    `- ${item.kind === 'resolved' ? 'RESOLVED ' : ''}${item.title}${item.scope ? ` [${item.scope}]` : ''}: ${item.body}`;
  const text = [
    `${input.items.length} alert${input.items.length === 1 ? '' : 's'} of rule ${input.rule} for ${tenant}:`,
    ...firing.map(line),
    ...resolved.map(line),
  ].join('\n');
  return {
    version: 1,
    delivery_id: input.deliveryId,
    tenant_id: input.tenantId,
    rule: input.rule,
    audience: input.audience,
    severity,
    subject,
    text,
    alerts: [...input.items],
  };
}

/** "N alerts while muted": the alerts of one rule a mute silenced, delivered once when it ended. */
function renderMutedSummary(
  input: GroupedMessageInput,
  muted: NonNullable<GroupedMessageInput['muted']>,
  severity: AlertSeverity,
  tenant: string,
): AlertMessage {
  const n = input.items.length;
  const alerts = `${n} alert${n === 1 ? '' : 's'}`;
  const span = `${muted.from.toISOString()} to ${muted.until.toISOString()}`;
  const line = (item: AlertMessageItem) =>
    `- ${item.title}${item.scope ? ` [${item.scope}]` : ''}: ${item.body} (${item.at})`;
  return {
    version: 1,
    delivery_id: input.deliveryId,
    tenant_id: input.tenantId,
    rule: input.rule,
    audience: input.audience,
    severity,
    subject: `[AgentMeter ${severity}] ${alerts} while muted: ${input.items[0]?.title ?? input.rule} (${tenant})`,
    text: [
      `${alerts} of rule ${input.rule} fired for ${tenant} while muted (${muted.by}, ${span}):`,
      ...input.items.map(line),
    ].join('\n'),
    alerts: [...input.items],
    muted_by: muted.by,
  };
}
