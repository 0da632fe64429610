/**
 * BullMQ queue and job names. Do not rename: waiting jobs in Redis carry these names.
 * Payloads carry ids and parameters, never secrets or whole records.
 */
export const Queues = {
  /** Ingest housekeeping: partitions ahead, retention, usage folding. */
  IngestMaintenance: 'ingest-maintenance',
} as const;

export const JobNames = {
  Retention: 'retention',
} as const;

export interface RetentionJob {
  name: typeof JobNames.Retention;
  /** Overrides "now" (tests); ISO time. */
  now?: string;
}

export type IngestMaintenanceJob = RetentionJob;
