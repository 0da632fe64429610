export * from './job-data';
export * from './job-queue';
export * from './job-worker';
export * from './job-metrics';
