import './kafkajs-patches';
import './codecs';
export * from './kafka-client';
export * from './batch-consumer';
export * from './message-headers';
export * from './consumer-metrics';
