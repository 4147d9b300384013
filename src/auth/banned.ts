/**
 * Banned clients (EMQX emqx_banned): a client whose client id, username or address matches
 * an entry is refused at CONNECT with 0x8A Banned (3.1.1: 5 Not Authorized), before any
 * authenticator runs. Entries carry EMQX's fields `as`, `who`, `by`, `reason`, `at`, `until`
 * and live in the record store (kind `banned`, key `<as>:<who>`), so they survive a restart.
 *
 * Lookup cost at CONNECT: one map probe each for the client id, the username and the address
 * (the one the PROXY protocol reported, when the listener uses it), then the CIDR entries and
 * the regex entries in turn; the address is parsed once per check and a CIDR entry is a masked
 * compare of 32-bit words (node's BlockList.check costs ~4 us a call, too much per entry). With
 * no entry at all the check is one size test.
 *
 * Expiry: an entry past `until` no longer matches (checked at lookup, so a ban ends on time
 * whatever the timer does); `purge`, run by the auth room's one sweep timer, removes expired
 * entries from memory and the store. Adding an entry calls `onAdded`, which the app uses to
 * disconnect the clients it matches.
 */
import { isIP, isIPv4 } from 'node:net';
import type { BanHit } from '../hooks/index.js';
import type { Logger } from '../observability/index.js';
import type { RecordStore } from '../store/index.js';

/** EMQX's `as` values. peerhost_net is a CIDR; the *_re kinds are regular expressions. */
export const BAN_KINDS = ['clientid', 'username', 'peerhost', 'peerhost_net', 'clientid_re', 'username_re'] as const;
export type BanKind = (typeof BAN_KINDS)[number];

const RECORD_KIND = 'banned';
/** EMQX's default length of a ban when `until` is not given: one year. */
const DEFAULT_BAN_MS = 365 * 24 * 3600 * 1000;

export interface BanEntry {
  readonly as: BanKind;
  readonly who: string;
  /** Who banned: an admin's name, `flapping_detector`, `api`... */
  readonly by: string;
  readonly reason: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
  /** Milliseconds since the epoch; null: never expires. */
  readonly until: number | null;
}

/** What `add` takes: `as` and `who`, the rest defaulted (by "api", at now, until at + 1 year). */
export interface NewBan {
  readonly as: BanKind | string;
  readonly who: string;
  readonly by?: string;
  readonly reason?: string;
  readonly at?: number;
  /** null: never expires. */
  readonly until?: number | null;
}

/** A ban the API cannot take (unknown `as`, bad address or regex, until in the past). */
export class BannedError extends Error {}

/** The client fields a ban can match. */
export interface BanSubject {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly peerHost: string;
}

interface Compiled {
  readonly entry: BanEntry;
  readonly net?: Cidr;
  readonly re?: RegExp;
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`, so IPv4 clients on a dual-stack listener match IPv4 entries. */
function plainAddress(host: string): string {
  return host.startsWith('::ffff:') && isIPv4(host.slice(7)) ? host.slice(7) : host;
}

export class Banned {
  private readonly byClientId = new Map<string, Compiled>();
  private readonly byUsername = new Map<string, Compiled>();
  private readonly byHost = new Map<string, Compiled>();
  /** CIDR and regex entries, scanned in turn. */
  private readonly scanned = new Map<string, Compiled>();
  private records: RecordStore | null = null;
  /** Called after an entry is added (the app disconnects matching clients). */
  onAdded: ((entry: BanEntry) => void) | null = null;

  /** `logger`: added, removed and expired entries are logged (banned_added, ...). */
  constructor(private readonly logger?: Logger) {}

  get size(): number {
    return this.byClientId.size + this.byUsername.size + this.byHost.size + this.scanned.size;
  }

  /**
   * Adds or replaces the entry for (`as`, `who`); durable on return once the store is open.
   * Returns the entry as stored. Throws BannedError on bad input.
   */
  add(ban: NewBan, now = Date.now()): BanEntry {
    const entry = normalize(ban, now);
    const compiled = compile(entry);
    this.records?.put(RECORD_KIND, key(entry.as, entry.who), entry);
    this.mapFor(entry.as).set(this.mapKey(entry.as, entry.who), compiled);
    this.logger?.notice('banned_added', { as: entry.as, who: entry.who, by: entry.by, reason: entry.reason, until: entry.until === null ? 'infinity' : new Date(entry.until).toISOString() });
    this.onAdded?.(entry);
    return entry;
  }

  /** Removes the entry; true when there was one. */
  remove(as: string, who: string): boolean {
    if (!(BAN_KINDS as readonly string[]).includes(as)) return false;
    const kind = as as BanKind;
    const k = this.mapKey(kind, kind === 'peerhost' ? plainAddress(who) : who);
    const map = this.mapFor(kind);
    const c = map.get(k);
    if (c === undefined) return false;
    this.records?.delete(RECORD_KIND, key(c.entry.as, c.entry.who));
    map.delete(k);
    this.logger?.notice('banned_removed', { as: c.entry.as, who: c.entry.who });
    return true;
  }

  /** Every entry (expired ones not yet purged included), oldest first. */
  list(): BanEntry[] {
    const all = [...this.byClientId.values(), ...this.byUsername.values(), ...this.byHost.values(), ...this.scanned.values()];
    return all.map((c) => c.entry).sort((a, b) => a.at - b.at || (key(a.as, a.who) < key(b.as, b.who) ? -1 : 1));
  }

  get(as: string, who: string): BanEntry | undefined {
    if (!(BAN_KINDS as readonly string[]).includes(as)) return undefined;
    const kind = as as BanKind;
    return this.mapFor(kind).get(this.mapKey(kind, kind === 'peerhost' ? plainAddress(who) : who))?.entry;
  }

  /** Removes every entry; returns how many there were. */
  clear(): number {
    const n = this.size;
    this.records?.clear(RECORD_KIND);
    for (const m of [this.byClientId, this.byUsername, this.byHost, this.scanned]) m.clear();
    return n;
  }

  /** The entry that bans this client now, if any (the CONNECT check). */
  check(c: BanSubject, now = Date.now()): BanEntry | undefined {
    if (this.size === 0) return undefined;
    let hit = live(this.byClientId.get(c.clientId), now);
    if (hit === undefined && c.username !== undefined) hit = live(this.byUsername.get(c.username), now);
    const host = plainAddress(c.peerHost);
    if (hit === undefined) hit = live(this.byHost.get(host), now);
    if (hit === undefined && this.scanned.size > 0) {
      const addr = parseIp(host);
      for (const x of this.scanned.values()) {
        if (live(x, now) !== undefined && compiledMatches(x, c, host, addr)) return x.entry;
      }
    }
    return hit;
  }

  /** The CONNECT check in the form the channel asks for it. */
  hit(c: BanSubject): BanHit | undefined {
    const e = this.check(c);
    return e === undefined ? undefined : { as: e.as, who: e.who };
  }

  /** Whether `entry` matches this client (used to disconnect clients a new ban covers). */
  matches(entry: BanEntry, c: BanSubject): boolean {
    const host = plainAddress(c.peerHost);
    return compiledMatches(compile(entry), c, host, parseIp(host));
  }

  /** Removes entries whose `until` has passed, from memory and the store; returns them. */
  purge(now = Date.now()): BanEntry[] {
    const gone: BanEntry[] = [];
    for (const m of [this.byClientId, this.byUsername, this.byHost, this.scanned]) {
      for (const [k, c] of m) {
        if (c.entry.until !== null && c.entry.until <= now) {
          try {
            this.records?.delete(RECORD_KIND, key(c.entry.as, c.entry.who));
          } catch {
            continue; // the store is failing: keep it and try at the next purge (it no longer matches anyway)
          }
          m.delete(k);
          gone.push(c.entry);
        }
      }
    }
    if (gone.length > 0) this.logger?.info('banned_expired', { count: gone.length });
    return gone;
  }

  /**
   * Binds to the record store at start: entries added before are written, stored ones loaded
   * (expired ones dropped). Returns how many entries are in force.
   */
  open(records: RecordStore, now = Date.now()): number {
    for (const c of this.all()) records.put(RECORD_KIND, key(c.entry.as, c.entry.who), c.entry);
    for (const r of records.list<BanEntry>(RECORD_KIND)) {
      let entry: BanEntry;
      try {
        entry = normalize(r.value, r.value.at);
      } catch {
        records.delete(RECORD_KIND, r.key); // unreadable: written by a newer or broken version
        continue;
      }
      if (entry.until !== null && entry.until <= now) {
        records.delete(RECORD_KIND, r.key);
        continue;
      }
      this.mapFor(entry.as).set(this.mapKey(entry.as, entry.who), compile(entry));
    }
    this.records = records;
    return this.size;
  }

  private all(): Compiled[] {
    return [...this.byClientId.values(), ...this.byUsername.values(), ...this.byHost.values(), ...this.scanned.values()];
  }

  private mapFor(as: BanKind): Map<string, Compiled> {
    switch (as) {
      case 'clientid': return this.byClientId;
      case 'username': return this.byUsername;
      case 'peerhost': return this.byHost;
      default: return this.scanned;
    }
  }

  private mapKey(as: BanKind, who: string): string {
    return this.mapFor(as) === this.scanned ? key(as, who) : who;
  }
}

function key(as: BanKind, who: string): string {
  return `${as}:${who}`;
}

function live(c: Compiled | undefined, now: number): BanEntry | undefined {
  if (c === undefined) return undefined;
  return c.entry.until === null || c.entry.until > now ? c.entry : undefined;
}

function compiledMatches(x: Compiled, c: BanSubject, host: string, addr: Uint32Array | null): boolean {
  const e = x.entry;
  switch (e.as) {
    case 'clientid': return c.clientId === e.who;
    case 'username': return c.username === e.who;
    case 'peerhost': return host === e.who;
    case 'peerhost_net': return addr !== null && inCidr(addr, x.net!);
    case 'clientid_re': return x.re!.test(c.clientId);
    case 'username_re': return c.username !== undefined && x.re!.test(c.username);
  }
}

/** Checks and completes a ban; `peerhost` given a CIDR becomes `peerhost_net`. */
function normalize(ban: NewBan, now: number): BanEntry {
  if (typeof ban !== 'object' || ban === null) throw new BannedError('a ban must be an object with as and who');
  let as = ban.as;
  if (!(BAN_KINDS as readonly string[]).includes(as)) {
    throw new BannedError(`as must be one of ${BAN_KINDS.join(', ')}; got ${JSON.stringify(as)}`);
  }
  let who = ban.who;
  if (typeof who !== 'string' || who === '') throw new BannedError('who must be a non-empty string');
  if (as === 'peerhost' && who.includes('/')) as = 'peerhost_net';
  if (as === 'peerhost') {
    who = plainAddress(who);
    if (isIP(who) === 0) throw new BannedError(`peerhost must be an IP address (or a CIDR such as 10.0.0.0/8); got ${JSON.stringify(ban.who)}`);
  }
  const at = ban.at ?? now;
  if (typeof at !== 'number' || !Number.isFinite(at)) throw new BannedError('at must be a time in milliseconds since the epoch');
  const until = ban.until === undefined ? at + DEFAULT_BAN_MS : ban.until;
  if (until !== null && (typeof until !== 'number' || !Number.isFinite(until))) {
    throw new BannedError('until must be a time in milliseconds since the epoch, or null for never');
  }
  if (until !== null && until <= now) throw new BannedError('until is not in the future');
  const by = ban.by ?? 'api';
  const reason = ban.reason ?? '';
  if (typeof by !== 'string' || typeof reason !== 'string') throw new BannedError('by and reason must be strings');
  const entry: BanEntry = { as: as as BanKind, who, by, reason, at, until };
  compile(entry); // throws on a bad CIDR or regex
  return entry;
}

function compile(entry: BanEntry): Compiled {
  if (entry.as === 'peerhost_net') {
    const slash = entry.who.lastIndexOf('/');
    const addr = slash < 0 ? entry.who : entry.who.slice(0, slash);
    const bits = slash < 0 ? NaN : Number(entry.who.slice(slash + 1));
    const fam = isIP(addr);
    if (fam === 0 || !Number.isInteger(bits) || bits < 0 || bits > (fam === 4 ? 32 : 128) || !/^\d+$/.test(entry.who.slice(slash + 1))) {
      throw new BannedError(`peerhost_net must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32; got ${JSON.stringify(entry.who)}`);
    }
    return { entry, net: { base: parseIp(addr)!, bits } };
  }
  if (entry.as === 'clientid_re' || entry.as === 'username_re') {
    try {
      return { entry, re: new RegExp(entry.who) };
    } catch (err) {
      throw new BannedError(`${entry.as} is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return { entry };
}

/** A network: its address words (1 for IPv4, 4 for IPv6) and prefix length. */
interface Cidr {
  readonly base: Uint32Array;
  readonly bits: number;
}

function inCidr(addr: Uint32Array, net: Cidr): boolean {
  if (addr.length !== net.base.length) return false;
  let bits = net.bits;
  for (let i = 0; i < addr.length && bits > 0; i++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if (((addr[i]! & mask) >>> 0) !== ((net.base[i]! & mask) >>> 0)) return false;
  }
  return true;
}

/** An IPv4 (one word) or IPv6 (four words) address; null when `host` is neither. */
function parseIp(host: string): Uint32Array | null {
  const fam = isIP(host);
  if (fam === 4) {
    const p = host.split('.');
    return Uint32Array.of((((+p[0]! << 24) | (+p[1]! << 16) | (+p[2]! << 8) | +p[3]!) >>> 0));
  }
  if (fam !== 6) return null;
  let h = host;
  const zone = h.indexOf('%');
  if (zone >= 0) h = h.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) becomes two groups.
  const lastColon = h.lastIndexOf(':');
  const tail = h.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIp(tail)![0]!;
    h = `${h.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, rest] = h.split('::') as [string, string | undefined];
  const a = head === '' ? [] : head.split(':');
  const b = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? a : [...a, ...new Array<string>(8 - a.length - b.length).fill('0'), ...b];
  const out = new Uint32Array(4);
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i]!, 16);
    out[i >> 1] = i % 2 === 0 ? (g << 16) >>> 0 : (out[i >> 1]! | g) >>> 0;
  }
  return out;
}
