import { Partitioners, type Kafka, type Message } from 'kafkajs';

export interface Publishable {
  key: string;
}

/**
 * Publishes events as CloudEvents in structured JSON mode, keyed (so one run stays in one partition and
 * in order), with an idempotent producer, in chunks.
 */
export async function publishEvents(
  kafka: Kafka,
  topic: string,
  events: ReadonlyArray<Publishable & object>,
  chunk = 500,
): Promise<void> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    for (let i = 0; i < events.length; i += chunk) {
      const messages: Message[] = events.slice(i, i + chunk).map(({ key, ...event }) => ({
        key,
        value: JSON.stringify(event),
        headers: { 'content-type': 'application/cloudevents+json; charset=UTF-8' },
      }));
      await producer.send({ topic, messages });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Publishes raw messages as given (tests use it for malformed input). */
export async function publishRaw(
  kafka: Kafka,
  topic: string,
  messages: Array<{ key: string; value: string | Buffer; headers?: Record<string, string> }>,
): Promise<void> {
  // Idempotent: a send retried after an error the broker answered late (NOT_LEADER just after a topic is
  // created) must not write its messages twice.
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    await producer.send({ topic, messages });
  } finally {
    await producer.disconnect();
  }
}
