/** The library surface: `import { createBroker } from 'petrel'`. */
export { createBroker, Petrel, type CreateBrokerOptions } from './app.js';
export * as codec from './codec/index.js';
export { loadConfig, ConfigError, type PetrelConfig } from './config/index.js';
export { Hooks, type HookName, type HookCatalog } from './hooks/index.js';
