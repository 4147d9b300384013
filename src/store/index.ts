export type { StoredMessage, RetainedStore } from './types.js';
export { MemoryRetainedStore } from './memory/retained.js';
export {
  StoreError,
  type DurableStore,
  type DurableState,
  type PersistedSession,
  type PersistedSubscription,
  type PersistedDelivery,
  type PersistedWill,
  type PersistedDelayed,
} from './durable.js';
export { MemoryDurableStore } from './memory/durable.js';
export { SqliteDurableStore, DATABASE_FILE, type SqliteDurableStoreOptions } from './sqlite/durable.js';
export { MemoryRecordStore, type RecordStore, type StoredRecord } from './records.js';
