export * from './money';
export * from './run-projection';
export * from './usage-rollup';
export * from './clock';
export * from './retention';
export * from './pricing';
export * from './redaction';
