export * from './problem';
export * from './unavailable';
