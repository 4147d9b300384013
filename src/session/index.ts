export { Session, type SessionOutlet, type InflightEntry, type SessionSubscription } from './session.js';
export { Deque } from './deque.js';
export { restoreDurableState, type RestoreSummary } from './restore.js';
