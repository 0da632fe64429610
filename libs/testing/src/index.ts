export * from './workload';
export * from './publish';
export * from './environment';
export * from './eventually';
export * from './database';
export * from './kafka';
export * from './services';
export * from './private-kafka';
