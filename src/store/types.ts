/**
 * Storage interfaces. The broker keeps its working state in memory and writes through these
 * interfaces what must outlive a connection (retained messages now; sessions, queues and
 * wills with the durable store). Every implementation passes the contract suite in
 * test/store/contract.ts.
 */
import type { Properties, QoS } from '../codec/index.js';

/** An application message as the broker routes and stores it. */
export interface StoredMessage {
  /** Broker-unique id, increasing in arrival order. */
  id: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  /** The RETAIN flag as published. */
  retain: boolean;
  /** Publisher's client id ('' for messages from the API or the broker itself). */
  from: string;
  /** Arrival time, ms since the epoch. */
  timestamp: number;
  /** Absolute expiry, ms since the epoch; 0 = never [MQTT-3.3.2-5]. */
  expiresAt: number;
  /**
   * MQTT 5 properties forwarded unaltered to subscribers [MQTT-3.3.2-4, -17, -20]:
   * payload format indicator, content type, response topic, correlation data, user
   * properties. Topic alias, subscription ids and message expiry are per hop.
   */
  properties?: Properties;
}

export interface RetainedStore {
  /** Stores (or, with an empty payload, deletes) the retained message of `msg.topic`. */
  set(msg: StoredMessage): void;
  delete(topic: string): boolean;
  get(topic: string): StoredMessage | undefined;
  /** Retained messages whose topic matches `filter`, expired ones excluded. */
  match(filter: string, now: number): StoredMessage[];
  /** Number of retained messages held. */
  readonly size: number;
  /** All retained messages (management API), in topic order. */
  list(): StoredMessage[];
  /** Drops expired messages; returns how many. */
  sweep(now: number): number;
}
