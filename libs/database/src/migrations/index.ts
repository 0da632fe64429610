import { Foundation1764100000000 } from './1764100000000-foundation';

/** Every migration, in order. Listed explicitly so compiled and test builds run the same set. */
export const MIGRATIONS = [Foundation1764100000000];
