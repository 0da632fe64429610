export * from './problem';
export * from './validation';
export * from './security-headers';
export * from './redaction.interceptor';
export * from './unavailable';
export * from './http-metrics';
export * from './fastify';
export * from './service';
