export * from './problem';
export * from './redaction.interceptor';
