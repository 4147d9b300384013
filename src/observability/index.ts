export * from './events.js';
export * from './logger.js';
export * from './metrics.js';
export * from './trace.js';
export * from './alarms.js';
