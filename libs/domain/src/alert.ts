export * from './alert-lifecycle';
export * from './alert-mute';
export * from './alert-rules';
export * from './alert-delivery';
export * from './alert-ssrf';
export * from './alert-crypto';
