/**
 * The broker's public facade: what the session and channel use, and what edge rooms
 * (API, CLI, rules, integrations) may import.
 */
export { Broker, type BrokerDeps, type SubscribeResult } from './broker.js';
export { TimerWheel, TimerEntry, type TimerTask } from './timer-wheel.js';
export {
  PublishOutcome,
  NO_SUBSCRIPTION_IDS,
  makeSubOptions,
  type Message,
  type SubOptions,
  type Subscriber,
  type SessionHandle,
  type ConnectionHandle,
  type ClientSummary,
} from './types.js';
export { fnv1a } from './shared.js';
export { Backpressure, type HoldablePublisher, type CongestedSubscriber, type BackpressureOptions } from './backpressure.js';
export { Management, type OfflineSession, type SubscriptionInfo, type RouteInfo, type BrokerStats, type ManagementPublish, type ManagementSubscribeResult } from './management.js';
export { SysTopics, SYS_EVENT_QUEUE_MAX, type SysTopicsOptions } from './sys.js';
