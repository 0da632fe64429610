export * from './data-source';
export * from './database.module';
export * from './migrations';
export * from './admin';
export * from './partitions';
export * from './pricing.repository';
export * from './pg-client';
export * from './prepared-statement';
