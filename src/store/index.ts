export type { StoredMessage, RetainedStore } from './types.js';
export { MemoryRetainedStore } from './memory/retained.js';
