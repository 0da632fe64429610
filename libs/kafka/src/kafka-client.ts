import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import type { Logger } from 'pino';

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  /** Prepended to every topic name; tests use it to isolate runs on a shared broker. */
  topicPrefix: string;
}

/** Builds a kafkajs client whose log lines go to the service's JSON logger. */
export function createKafka(options: KafkaOptions, logger: Logger): Kafka {
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 200, retries: 10 },
    logCreator:
      () =>
      ({ level, log }) => {
        const { message, ...extra } = log;
        const fields = { context: 'kafkajs', ...extra };
        if (level === logLevel.ERROR) logger.error(fields, message);
        else if (level === logLevel.WARN) logger.warn(fields, message);
        else logger.debug(fields, message);
      },
  };
  return new Kafka(config);
}
