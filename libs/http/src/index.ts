export * from './problem';
export * from './validation';
export * from './security-headers';
export * from './http-metrics';
