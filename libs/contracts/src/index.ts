export * from './topics';
export * from './events';
export * from './envelope';
