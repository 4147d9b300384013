/**
 * The SQLite schema and its versioned migrations.
 *
 * `PRAGMA user_version` holds the schema version: the number of MIGRATIONS steps applied.
 * Opening a database applies the missing steps in one transaction; a database whose version
 * is newer than MIGRATIONS.length was written by a newer Petrel and is refused.
 * Steps are append-only: never edit a released step, add a new one.
 *
 * Message columns (shared by messages, retained, wills and delayed):
 *   id, topic, payload BLOB, qos, retain (0/1), sender (publisher's client id),
 *   timestamp, expires_at (0 = never), properties (NULL, or JSON with Buffers tagged, see
 *   properties.ts).
 * sessions.expiry_interval: ms, -1 = never (Infinity).
 * deliveries.state: 0 queued, 1 publish, 2 pubrel.
 * deliveries.subscription_ids: NULL (none), an integer (one), or text "1,2,3" (several).
 *
 * Inline deliveries (schemas 3 and 4): the first delivery recorded for a message in the batch
 * that writes the message goes into the message's row (d_incarnation, d_seq,
 * d_subscription_ids, d_state = state | qos << 2 | retain << 4 | packet_id << 5) instead of a
 * `deliveries` row: one row insert and one row delete per message instead of two each, for
 * the common single-recipient message. Other deliveries of the message are `deliveries`
 * rows. An inline delivery belongs to the session whose `incarnation` equals d_incarnation (a
 * number the store gives each new session row, never reused, so it names the session: no
 * client id is stored with the copy) and counts only while d_incarnation is not NULL and such
 * a session exists. So deleting a session needs no scan of `messages`, and a later session
 * of the same client id (its seqs restart) never inherits its predecessor's inline
 * deliveries.
 *
 * The message log (schema 5, log.ts): the messages a batch writes for the first time go, with
 * their inline deliveries, into one `message_log` row (a segment) rather than a `messages` row
 * each; `message_log_gone` holds each segment's bitmap of deleted entries, `message_log_state`
 * the later states of their inline deliveries. A message id is live in one of the two places.
 *
 * No foreign keys: the broker may record a delivery before its message within a batch, and
 * load() removes whatever a crash between two related writes could leave dangling.
 */
import type Database from 'better-sqlite3';
import { StoreError } from '../durable.js';

/** 'Ptrl': marks the file as Petrel's, so a foreign SQLite database is refused. */
export const APPLICATION_ID = 0x5074726c;

const MESSAGE_COLUMNS = `
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  sender TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  properties TEXT`;

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema.
  `
  CREATE TABLE messages (
    id INTEGER PRIMARY KEY,${MESSAGE_COLUMNS}
  );
  CREATE TABLE sessions (
    client_id TEXT PRIMARY KEY,
    expiry_interval INTEGER NOT NULL,
    disconnected_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE subscriptions (
    client_id TEXT NOT NULL,
    filter TEXT NOT NULL,
    qos INTEGER NOT NULL,
    no_local INTEGER NOT NULL,
    retain_as_published INTEGER NOT NULL,
    retain_handling INTEGER NOT NULL,
    subscription_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, filter)
  ) WITHOUT ROWID;
  CREATE TABLE deliveries (
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    subscription_ids,
    packet_id INTEGER NOT NULL,
    state INTEGER NOT NULL,
    PRIMARY KEY (client_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE awaiting_rel (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
  ) WITHOUT ROWID;
  CREATE TABLE retained (
    topic TEXT PRIMARY KEY,
    id INTEGER NOT NULL,${MESSAGE_COLUMNS.replace('topic TEXT NOT NULL,', '')}
  );
  CREATE TABLE wills (
    client_id TEXT PRIMARY KEY,
    id INTEGER NOT NULL,${MESSAGE_COLUMNS},
    due_at INTEGER NOT NULL
  );
  CREATE TABLE delayed (
    message_id INTEGER PRIMARY KEY,${MESSAGE_COLUMNS},
    due_at INTEGER NOT NULL
  );
  `,
  // 2: control-plane records (users, ACL rules, banned, API keys, admins; see records.ts).
  `
  CREATE TABLE records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
  ) WITHOUT ROWID;
  `,
  // 3: a message's first delivery inside the message's row (see the header), and session
  // incarnations that tell such a delivery of a deleted session from one of its successor.
  `
  ALTER TABLE sessions ADD COLUMN incarnation INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE messages ADD COLUMN d_client TEXT;
  ALTER TABLE messages ADD COLUMN d_incarnation INTEGER;
  ALTER TABLE messages ADD COLUMN d_seq INTEGER;
  ALTER TABLE messages ADD COLUMN d_qos INTEGER;
  ALTER TABLE messages ADD COLUMN d_subscription_ids;
  ALTER TABLE messages ADD COLUMN d_packet_id INTEGER;
  ALTER TABLE messages ADD COLUMN d_state INTEGER;
  `,
  // 4: inline deliveries keyed by incarnation alone and their qos, retain, state and packet id
  // packed into d_state (see the header): four values fewer to bind per message. Sessions
  // that came from schema 2 all have incarnation 0, so first their live inline copies move
  // to `deliveries` and they get incarnations of their own; copies that count for nothing
  // (cleared, stale, incomplete) lose their incarnation.
  `
  INSERT OR REPLACE INTO deliveries (client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state)
    SELECT m.d_client, m.d_seq, m.id, m.d_qos & 3, (m.d_qos >> 2) & 1, m.d_subscription_ids, coalesce(m.d_packet_id, 0), m.d_state
    FROM messages m JOIN sessions s ON s.client_id = m.d_client AND s.incarnation = m.d_incarnation
    WHERE m.d_incarnation = 0 AND m.d_seq IS NOT NULL AND m.d_state IS NOT NULL;
  UPDATE messages SET d_incarnation = NULL
    WHERE d_client IS NULL OR d_seq IS NULL OR d_state IS NULL OR d_incarnation IS NULL OR d_incarnation = 0
       OR d_incarnation IS NOT (SELECT incarnation FROM sessions WHERE client_id = messages.d_client);
  CREATE TEMP TABLE renumber AS
    SELECT client_id, row_number() OVER (ORDER BY client_id) + (SELECT coalesce(max(incarnation), 0) FROM sessions) AS incarnation
    FROM sessions WHERE incarnation = 0;
  UPDATE sessions SET incarnation = (SELECT r.incarnation FROM renumber r WHERE r.client_id = sessions.client_id)
    WHERE incarnation = 0;
  DROP TABLE renumber;
  UPDATE messages SET d_state = d_state | ((coalesce(d_qos, 0) & 7) << 2) | (coalesce(d_packet_id, 0) << 5)
    WHERE d_incarnation IS NOT NULL;
  ALTER TABLE messages DROP COLUMN d_client;
  ALTER TABLE messages DROP COLUMN d_qos;
  ALTER TABLE messages DROP COLUMN d_packet_id;
  `,
  // 5: the message log (log.ts): the messages a batch writes for the first time in one row,
  // with the bitmap of its deleted entries and the later states of its inline deliveries
  // beside it.
  `
  CREATE TABLE message_log (
    first_id INTEGER PRIMARY KEY,
    last_id INTEGER NOT NULL,
    body BLOB NOT NULL
  );
  CREATE TABLE message_log_gone (
    first_id INTEGER PRIMARY KEY,
    gone BLOB NOT NULL
  );
  CREATE TABLE message_log_state (
    id INTEGER PRIMARY KEY,
    d_state INTEGER
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema to the latest version (`migrations.length`; tests pass their own list),
 * or refuses a database that isn't ours or is newer. Throws StoreError naming the file.
 */
export function migrate(db: Database.Database, file: string, migrations: readonly string[] = MIGRATIONS): void {
  const target = migrations.length;
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== 0 && appId !== APPLICATION_ID) {
    throw new StoreError(
      `durable store ${file}: not a Petrel database (SQLite application_id 0x${appId.toString(16)})`,
      file,
    );
  }
  if (version > target) {
    throw new StoreError(
      `durable store ${file}: schema version ${version} is newer than this Petrel supports (${target}); ` +
        'run a Petrel release that knows it, or point node.data_dir elsewhere',
      file,
    );
  }
  if (version === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").get() as {
      n: number;
    };
    if (tables.n > 0) {
      throw new StoreError(`durable store ${file}: not a Petrel database (it has tables but no Petrel schema version)`, file);
    }
  }
  // Always one write transaction, even when up to date: it proves the file is writable now,
  // not at the first commit.
  db.transaction(() => {
    for (let v = version; v < target; v++) {
      try {
        db.exec(migrations[v]!);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new StoreError(`durable store ${file}: migration to schema version ${v + 1} failed: ${why}`, file, err);
      }
    }
    db.pragma(`user_version = ${target}`);
    db.pragma(`application_id = ${APPLICATION_ID}`);
  }).immediate();
}

