import { MemoryDurableStore, type DurableStore } from '../../src/store/index.js';
import { runDurableStoreContract } from './contract.js';

runDurableStoreContract('memory', () => ({
  create(): DurableStore {
    const s = new MemoryDurableStore();
    s.open();
    return s;
  },
  reopen(store: DurableStore): DurableStore {
    store.close();
    store.open();
    return store;
  },
  dispose(): void {},
}));
