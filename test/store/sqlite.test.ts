import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDurableStore, type DurableStore } from '../../src/store/index.js';
import { runDurableStoreContract } from './contract.js';

for (const sync of ['normal', 'full'] as const) {
  runDurableStoreContract(`sqlite (sync ${sync})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-store-'));
    const stores: DurableStore[] = [];
    const make = (): DurableStore => {
      const s = new SqliteDurableStore({ dir, sync });
      s.open();
      stores.push(s);
      return s;
    };
    return {
      create: make,
      reopen(store: DurableStore): DurableStore {
        store.close();
        return make();
      },
      dispose(): void {
        for (const s of stores) s.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
}
