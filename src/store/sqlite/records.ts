/**
 * RecordStore on the `records` table of the durable store's database. Each call is its own
 * autocommit transaction: durable on return (at the store's `sync` level), independent of the
 * message plane's group-commit batch, which lives in memory until its commit.
 */
import type Database from 'better-sqlite3';
import { StoreError } from '../durable.js';
import { encodeValue, type RecordStore, type StoredRecord } from '../records.js';

type Stmt = Database.Statement;

export class SqliteRecordStore implements RecordStore {
  private readonly putStmt: Stmt;
  private readonly deleteStmt: Stmt;
  private readonly clearStmt: Stmt;
  private readonly getStmt: Stmt;
  private readonly listStmt: Stmt;

  constructor(db: Database.Database, private readonly file: string) {
    this.putStmt = db.prepare('INSERT OR REPLACE INTO records (kind, key, value) VALUES (?, ?, ?)');
    this.deleteStmt = db.prepare('DELETE FROM records WHERE kind = ? AND key = ?');
    this.clearStmt = db.prepare('DELETE FROM records WHERE kind = ?');
    this.getStmt = db.prepare('SELECT value FROM records WHERE kind = ? AND key = ?');
    this.listStmt = db.prepare('SELECT key, value FROM records WHERE kind = ? ORDER BY key');
  }

  put(kind: string, key: string, value: unknown): void {
    const text = encodeValue(kind, key, value, this.file);
    this.write(`put ${kind}/${key}`, () => this.putStmt.run(kind, key, text));
  }

  delete(kind: string, key: string): boolean {
    return this.write(`delete ${kind}/${key}`, () => this.deleteStmt.run(kind, key)).changes > 0;
  }

  clear(kind: string): number {
    return this.write(`clear ${kind}`, () => this.clearStmt.run(kind)).changes;
  }

  get<T = unknown>(kind: string, key: string): T | undefined {
    const row = this.getStmt.get(kind, key) as { value: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  list<T = unknown>(kind: string): StoredRecord<T>[] {
    const rows = this.listStmt.all(kind) as { key: string; value: string }[];
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
  }

  private write(what: string, run: () => Database.RunResult): Database.RunResult {
    try {
      return run();
    } catch (err) {
      throw new StoreError(`durable store ${this.file}: record ${what} failed: ${(err as Error).message}`, this.file, err);
    }
  }
}
