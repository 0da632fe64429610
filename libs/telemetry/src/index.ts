export * from './logger';
export * from './metrics';
export * from './tracing';
export * from './sampling';
export * from './job-trace';
export * from './observability.controller';
export * from './connections';
export * from './redis';
