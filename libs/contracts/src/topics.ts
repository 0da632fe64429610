/**
 * Kafka topic names. Do not rename: producers outside this repository publish to them.
 * A breaking change to a message is a new topic (".v2"), never an edit of these.
 */
export const Topics = {
  /** Agent and Coordinator events, CloudEvents 1.0, keyed by run_id. */
  AgentEvents: 'agent.events.v1',
  /** Messages ingest could not accept, with the reason in headers. */
  AgentEventsDlq: 'agent.events.dlq.v1',
  /** Commands to the Coordinator (short-circuit a run, block a tenant). */
  Control: 'agent.control.v1',
  /** Alert events raised by services for the alert service. */
  Alerts: 'agent.alerts.v1',
} as const;

export type TopicName = (typeof Topics)[keyof typeof Topics];

/** Every topic, for the scripts and tests that create them. */
export const ALL_TOPICS: readonly TopicName[] = Object.values(Topics);

/** Applies a deployment's topic prefix (used by tests to isolate runs on a shared broker). */
export function topicName(prefix: string, topic: TopicName): string {
  return `${prefix}${topic}`;
}

/** Headers set on dead-lettered messages. Do not rename: operators' tooling reads them. */
export const DlqHeaders = {
  Reason: 'x-dlq-reason',
  SourceTopic: 'x-dlq-source-topic',
  SourcePartition: 'x-dlq-source-partition',
  SourceOffset: 'x-dlq-source-offset',
  FailedAt: 'x-dlq-failed-at',
} as const;

/**
 * Headers of the record that the Kafka library (libs/kafka codecs) makes of a record batch it cannot
 * decode: its value is the raw batch (header and still compressed records). decodeKafkaMessage answers it with the
 * reason, so ingest dead-letters it and the other consumers skip it.
 */
export const UndecodableBatchHeaders = {
  Reason: 'x-agentmeter-undecodable-batch',
  /** A per-process secret: a producer cannot forge the marker. The consumer checks it, then drops it. */
  Marker: 'x-agentmeter-undecodable-marker',
} as const;
