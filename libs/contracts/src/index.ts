export * from './topics';
export * from './events';
export * from './envelope';
export * from './json-schema';
export * from './examples';
export * from './queues';
export * from './alerts';
export * from './control';
