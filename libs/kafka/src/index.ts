export * from './kafka-client';
export * from './batch-consumer';
