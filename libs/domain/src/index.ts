export * from './money';
export * from './run-projection';
