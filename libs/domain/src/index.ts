// One folder per subject (docs/decisions.md "libs/domain by subject"); money and the clock are the
// vocabulary every folder shares.
export * from './money';
export * from './clock';

// Folding events into stored runs, stages and usage rollups, and how long those rows are kept.
export * from './projection/run-projection';
export * from './projection/usage-rollup';
export * from './projection/span-tree';
export * from './projection/latency-sketch';
export * from './projection/retention';

// Model prices and what a call costs.
export * from './pricing/pricing';
export * from './pricing/price-table';

// Secrets and personal data removed or pseudonymised before anything is stored or logged.
export * from './privacy/redaction';
export * from './privacy/pseudonym';

// Who may do what through the query API, and which fields each role sees.
export * from './access/query-access';
export * from './access/field-policy';

// The query API's dashboards: periods, caps approaching, a project's next action.
export * from './analytics/analytics';

// Cost caps: limits in force, the tenant's day, admission, validator sampling, the model ladder.
export * from './caps/caps';
export * from './caps/caps-day';
export * from './caps/caps-sampling';
export * from './caps/admission';
export * from './caps/ladder';

// Alerts: rules, lifecycle, mutes, delivery policy, webhook targets, contact secrets.
export * from './alert/alert-rules';
export * from './alert/alert-lifecycle';
export * from './alert/alert-mute';
export * from './alert/alert-delivery';
export * from './alert/alert-ssrf';
export * from './alert/alert-crypto';
