export * from './events.js';
export * from './logger.js';
export * from './metrics.js';
