export * from './kafka-client';
export * from './batch-consumer';
export * from './message-headers';
