/**
 * What the auth room needs from a database backend (redis, mysql, postgresql): the user record
 * of a client (authentication) and the rule records of a client (authorization). Both are
 * bounded by the backend's request_timeout and reject when the backend is down or slow; the
 * caller turns that into "ignore" / "no match" (EMQX's behaviour), logs and counts it.
 */
import type { RawRule } from '../acl.js';
import type { Vars } from './template.js';

/** The keys a database backend reads (a subset of authentication.<name> / authorization.sources.<name>). */
export interface DbBackendConfig {
  readonly server: string;
  readonly database: string;
  readonly username: string;
  readonly password: string;
  readonly cmd: string;
  readonly query: string;
  readonly request_timeout: number;
  readonly pool_size: number;
}

export interface UserRecordLookup {
  /** The user's fields (password_hash or password, salt, is_superuser); null when unknown. */
  lookup(vars: Vars): Promise<Readonly<Record<string, unknown>> | null>;
  close(): Promise<void>;
}

export interface RuleRecordLookup {
  /** The client's rules; names of placeholders the query uses are in `vars`. */
  rules(vars: Vars): Promise<RawRule[]>;
  close(): Promise<void>;
}

/** Reports a connection-level problem noticed outside a request (reconnects, idle errors). */
export type ConnectionErrorSink = (err: Error) => void;
