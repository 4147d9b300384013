/**
 * Control-plane records: users, built-in ACL rules, banned entries, API keys, dashboard
 * admins. Few, small, rarely written, read at start: so each write is its own committed
 * transaction when the call returns (no group commit), and a value is any JSON-serialisable
 * object, so adding a field needs no schema migration.
 *
 * `kind` names the collection (`users:<authenticator>`, `authz_rules`, `banned`, `api_keys`,
 * `admins`); `key` is unique within a kind. In `durable_storage.mode = memory` the app uses
 * MemoryRecordStore: the same interface, nothing outlives the process.
 */
import { StoreError } from './durable.js';

export interface StoredRecord<T = unknown> {
  readonly key: string;
  readonly value: T;
}

export interface RecordStore {
  /** Inserts or replaces; durable on return. Throws StoreError when the write fails. */
  put(kind: string, key: string, value: unknown): void;
  /** Removes; true when the record existed. Throws StoreError when the write fails. */
  delete(kind: string, key: string): boolean;
  /** Removes every record of a kind; returns how many. */
  clear(kind: string): number;
  get<T = unknown>(kind: string, key: string): T | undefined;
  /** Every record of a kind, in key order. */
  list<T = unknown>(kind: string): StoredRecord<T>[];
}

/** Values are kept as JSON text, as the SQLite store keeps them, so both behave alike (copies out). */
export class MemoryRecordStore implements RecordStore {
  private readonly kinds = new Map<string, Map<string, string>>();

  put(kind: string, key: string, value: unknown): void {
    let m = this.kinds.get(kind);
    if (m === undefined) this.kinds.set(kind, (m = new Map()));
    m.set(key, encodeValue(kind, key, value, ':memory:'));
  }

  delete(kind: string, key: string): boolean {
    return this.kinds.get(kind)?.delete(key) ?? false;
  }

  clear(kind: string): number {
    const m = this.kinds.get(kind);
    if (m === undefined) return 0;
    const n = m.size;
    this.kinds.delete(kind);
    return n;
  }

  get<T = unknown>(kind: string, key: string): T | undefined {
    const text = this.kinds.get(kind)?.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  list<T = unknown>(kind: string): StoredRecord<T>[] {
    const m = this.kinds.get(kind);
    if (m === undefined) return [];
    return [...m.keys()].sort().map((key) => ({ key, value: JSON.parse(m.get(key)!) as T }));
  }
}

/** JSON text of a record value; undefined and non-serialisable values are refused by name. */
export function encodeValue(kind: string, key: string, value: unknown, file: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(`record ${kind}/${key}: value is not JSON-serialisable: ${(err as Error).message}`, file, err);
  }
  if (text === undefined) throw new StoreError(`record ${kind}/${key}: value is undefined`, file);
  return text;
}
