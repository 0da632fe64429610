import { Injectable } from '@nestjs/common';
import { traceHeaders } from '@agentmeter/kafka';
import { CostCapDatabase, type Tx } from '../db/database';

export type OutboxTopic = 'events' | 'control' | 'alerts';

export interface OutboxMessage {
  /** Deterministic: the same decision always makes the same id (consumers deduplicate on it). */
  messageId: string;
  topic: OutboxTopic;
  key: string;
  payload: unknown;
}

export interface PendingMessage extends OutboxMessage {
  createdAt: Date;
  /** The trace context of the decision that enqueued it (traceparent, tracestate), published with it. */
  trace: Record<string, string>;
}

/** Kafka messages decided in a transaction, published after it commits. */
@Injectable()
export class OutboxRepository {
  constructor(private readonly db: CostCapDatabase) {}

  async enqueue(tx: Tx, messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // Published after the request or batch is over: its trace context is kept with the message.
    const trace = JSON.stringify(traceHeaders());
    await tx.query(
      `INSERT INTO cost_cap_outbox (message_id, topic, message_key, payload, trace_headers)
       SELECT m.*, $5::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS m
       ON CONFLICT (message_id) DO NOTHING`,
      [
        messages.map((m) => m.messageId),
        messages.map((m) => m.topic),
        messages.map((m) => m.key),
        messages.map((m) => JSON.stringify(m.payload)),
        trace,
      ],
    );
  }

  /**
   * Hands a batch of unpublished messages to `send` and marks them published once it resolves. Rows are
   * locked (SKIP LOCKED), so replicas publishing at the same time take different messages.
   */
  async publishPending(send: (messages: PendingMessage[]) => Promise<void>, limit = 500): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{
        message_id: string;
        topic: OutboxTopic;
        message_key: string;
        payload: unknown;
        created_at: Date;
        trace_headers: Record<string, string> | null;
      }>(
        `SELECT message_id, topic, message_key, payload, created_at, trace_headers FROM cost_cap_outbox
          WHERE published_at IS NULL ORDER BY created_at, message_id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (rows.length === 0) return 0;
      await send(
        rows.map((row) => ({
          messageId: row.message_id,
          topic: row.topic,
          key: row.message_key,
          payload: row.payload,
          createdAt: row.created_at,
          trace: row.trace_headers ?? {},
        })),
      );
      await tx.query(`UPDATE cost_cap_outbox SET published_at = now() WHERE message_id = ANY($1::text[])`, [
        rows.map((row) => row.message_id),
      ]);
      return rows.length;
    });
  }
}
