/**
 * The `built_in_database` authorization source (EMQX emqx_authz_mnesia): rules kept by the
 * broker per client id, per username and for all clients, each rule in EMQX's shape
 * `{permission, action, topic, qos?, retain?}` (topic `eq t/#` for a literal filter,
 * placeholders `${username}`, `${clientid}`). A client's rules are its client id's, then its
 * username's, then the rules for all, in that order (as EMQX reads them); the first that
 * matches decides, as in any source.
 *
 * Rules live in the record store (kind `authz_rules`, keys `clientid:<id>`, `username:<name>`
 * and `all`), so they survive a restart; they are compiled once when set, and a client's
 * decision costs three map lookups on a cache miss. Every change calls `onChange`, which drops
 * the authorizer's cached decisions, so a new rule applies to the next PUBLISH.
 */
import type { ClientInfo } from '../hooks/index.js';
import type { RecordStore } from '../store/index.js';
import { RawRuleError, ruleFromRaw, type AclRule, type RawRule } from './acl.js';
import type { RuleSource } from './authz.js';

const RECORD_KIND = 'authz_rules';

/** One rule as given and shown (EMQX's REST shape). */
export interface BuiltinRule {
  readonly permission: 'allow' | 'deny';
  readonly action: 'publish' | 'subscribe' | 'all';
  readonly topic: string;
  readonly qos?: readonly number[];
  readonly retain?: boolean;
}

export type RuleSubject = 'clientid' | 'username';

/** Rules the API cannot take; the message names the rule (1-based) and what is wrong. */
export class BuiltinRuleError extends Error {}

interface Entry {
  readonly raw: readonly BuiltinRule[];
  readonly compiled: readonly AclRule[];
}

interface StoredRules {
  readonly rules: readonly BuiltinRule[];
}

const NONE: readonly AclRule[] = [];

export class BuiltinRules implements RuleSource {
  /** Unused: this source answers per client (`rulesFor`). */
  readonly rules: readonly AclRule[] = [];
  private readonly byClientId = new Map<string, Entry>();
  private readonly byUsername = new Map<string, Entry>();
  private forAll: Entry | null = null;
  private records: RecordStore | null = null;
  /** Called after every change (the authorizer drops its cached decisions). */
  onChange: (() => void) | null = null;

  constructor(readonly name: string) {}

  /** The rules for this client: its client id's, its username's, then all's. */
  rulesFor(info: ClientInfo): readonly AclRule[] {
    const c = this.byClientId.get(info.clientId)?.compiled ?? NONE;
    const u = info.username === undefined ? NONE : this.byUsername.get(info.username)?.compiled ?? NONE;
    const a = this.forAll?.compiled ?? NONE;
    if (u.length === 0 && a.length === 0) return c;
    if (c.length === 0 && a.length === 0) return u;
    if (c.length === 0 && u.length === 0) return a;
    return [...c, ...u, ...a];
  }

  /** Replaces the rules of one client id or username (an empty list removes them). Returns them as stored. */
  set(subject: RuleSubject, who: string, rules: readonly RawRule[]): BuiltinRule[] {
    checkSubject(subject, who);
    if (rules.length === 0) {
      this.remove(subject, who);
      return [];
    }
    const entry = compile(rules, `${this.name}:${subject}:${who}`);
    this.records?.put(RECORD_KIND, `${subject}:${who}`, { [subject]: who, rules: entry.raw });
    this.map(subject).set(who, entry);
    this.onChange?.();
    return [...entry.raw];
  }

  /** Replaces the rules for all clients (an empty list removes them). */
  setAll(rules: readonly RawRule[]): BuiltinRule[] {
    if (rules.length === 0) {
      this.removeAll();
      return [];
    }
    const entry = compile(rules, `${this.name}:all`);
    this.records?.put(RECORD_KIND, 'all', { rules: entry.raw });
    this.forAll = entry;
    this.onChange?.();
    return [...entry.raw];
  }

  remove(subject: RuleSubject, who: string): boolean {
    const map = this.map(subject);
    if (!map.has(who)) return false;
    this.records?.delete(RECORD_KIND, `${subject}:${who}`);
    map.delete(who);
    this.onChange?.();
    return true;
  }

  removeAll(): boolean {
    if (this.forAll === null) return false;
    this.records?.delete(RECORD_KIND, 'all');
    this.forAll = null;
    this.onChange?.();
    return true;
  }

  /** Removes every rule (EMQX DELETE /authorization/sources/built_in_database/rules). */
  clear(): void {
    this.records?.clear(RECORD_KIND);
    this.byClientId.clear();
    this.byUsername.clear();
    this.forAll = null;
    this.onChange?.();
  }

  get(subject: RuleSubject, who: string): BuiltinRule[] | undefined {
    const e = this.map(subject).get(who);
    return e === undefined ? undefined : [...e.raw];
  }

  getAll(): BuiltinRule[] {
    return [...(this.forAll?.raw ?? [])];
  }

  /** Every client id's (or username's) rules, ordered by name. */
  list(subject: RuleSubject): Array<{ who: string; rules: BuiltinRule[] }> {
    return [...this.map(subject)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([who, e]) => ({ who, rules: [...e.raw] }));
  }

  /**
   * Binds to the record store at start: rules set before are written, stored ones loaded
   * (a stored entry that no longer compiles is skipped and reported through `onBadRecord`).
   */
  open(records: RecordStore, onBadRecord: (key: string, err: Error) => void = () => {}): number {
    for (const [who, e] of this.byClientId) records.put(RECORD_KIND, `clientid:${who}`, { clientid: who, rules: e.raw });
    for (const [who, e] of this.byUsername) records.put(RECORD_KIND, `username:${who}`, { username: who, rules: e.raw });
    if (this.forAll !== null) records.put(RECORD_KIND, 'all', { rules: this.forAll.raw });
    let n = 0;
    for (const { key, value } of records.list<StoredRules>(RECORD_KIND)) {
      try {
        const colon = key.indexOf(':');
        const entry = compile(value.rules, `${this.name}:${key}`);
        if (key === 'all') this.forAll = entry;
        else if (key.startsWith('clientid:')) this.byClientId.set(key.slice(colon + 1), entry);
        else if (key.startsWith('username:')) this.byUsername.set(key.slice(colon + 1), entry);
        else continue;
        n += entry.raw.length;
      } catch (err) {
        onBadRecord(key, err as Error);
      }
    }
    this.records = records;
    this.onChange?.();
    return n;
  }

  private map(subject: RuleSubject): Map<string, Entry> {
    if (subject === 'clientid') return this.byClientId;
    if (subject === 'username') return this.byUsername;
    throw new BuiltinRuleError(`rules are kept per clientid or username; got ${JSON.stringify(subject)}`);
  }
}

function checkSubject(subject: RuleSubject, who: string): void {
  if (subject !== 'clientid' && subject !== 'username') throw new BuiltinRuleError(`rules are kept per clientid or username; got ${JSON.stringify(subject)}`);
  if (typeof who !== 'string' || who === '') throw new BuiltinRuleError(`${subject} must be a non-empty string`);
}

/** Checks and compiles rules; keeps them in EMQX's shape, normalised. */
function compile(rules: readonly RawRule[], source: string): Entry {
  if (!Array.isArray(rules)) throw new BuiltinRuleError('rules must be a list of {permission, action, topic, qos?, retain?}');
  const raw: BuiltinRule[] = [];
  const compiled: AclRule[] = [];
  rules.forEach((r, i) => {
    if (typeof r !== 'object' || r === null) throw new BuiltinRuleError(`rule ${i + 1}: expected an object {permission, action, topic}`);
    if (r.permission === undefined) throw new BuiltinRuleError(`rule ${i + 1}: permission missing (allow or deny)`);
    let rule: AclRule;
    try {
      rule = ruleFromRaw(r, `${source}#${i + 1}`);
    } catch (err) {
      if (err instanceof RawRuleError) throw new BuiltinRuleError(`rule ${i + 1}: ${err.message}`);
      throw err;
    }
    compiled.push(rule);
    const t = rule.topics === 'all' ? '#' : rule.topics[0]!;
    const shown: BuiltinRule = {
      permission: rule.permission,
      action: rule.action,
      topic: typeof t === 'string' ? t : t.eq ? `eq ${t.text}` : t.text,
      ...(rule.qos !== undefined ? { qos: rule.qos } : {}),
      ...(rule.retain !== undefined ? { retain: rule.retain } : {}),
    };
    raw.push(shown);
  });
  return { raw, compiled };
}
