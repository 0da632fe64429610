/** Injection token of the worker's pino logger. */
export const LOGGER = Symbol('LOGGER');
