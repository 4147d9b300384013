/**
 * Authorization: `authorization.sources` in order, the first rule that matches decides, then
 * `no_match`. Superusers (from authentication) are allowed everything.
 *
 * Hot path: the channel asks once per PUBLISH and per subscription filter. Decisions are
 * cached per connected client (`authorization.cache`: max_size entries, ttl), so a message
 * on a topic the client used within ttl costs two map lookups and a clock read; rules are
 * parsed once and never read from disk per message. A client's cache is dropped when it
 * disconnects, and every cache when the rules change (`reload`).
 *
 * A client is known by its client id; its state also records the peer address and port, so
 * the disconnect of a connection that was taken over does not drop the state of the new one.
 *
 * Sources whose rules depend only on the client (redis, mysql, postgresql) are not asked per
 * message either: `fetchClientRules` reads the client's rules once, while its CONNECT is being
 * authenticated (the one place that may await), and keeps them in the client's state; after
 * `cache.ttl` the next cache miss starts a refresh in the background and the old rules serve
 * until it lands. A source that cannot be read contributes no rules (EMQX: query error =
 * nomatch), so the next source or no_match decides.
 *
 * Rules with {qos, ...}/{retain, ...} conditions make the decision depend on the PUBLISH's
 * QoS and retain flag too; the cache key then carries them.
 */
import type { AuthorizationConfig } from '../config/index.js';
import type { ClientInfo } from '../hooks/index.js';
import type { Counter, Metrics } from '../observability/index.js';
import { hasConditions, ruleMatches, type AclRule } from './acl.js';

export type AuthzAction = 'publish' | 'subscribe';

/** A named list of rules (one `authorization.sources.<name>`). */
export interface RuleSource {
  readonly name: string;
  /** The source's rules for every client (file); empty for a per-client source. */
  rules: readonly AclRule[];
  /** Reads one client's rules (redis, mysql, postgresql); rejects when the backend fails. */
  readonly fetch?: (info: ClientInfo) => Promise<readonly AclRule[]>;
  /** One client's rules, at hand without I/O (built_in_database): asked on each cache miss. */
  readonly rulesFor?: (info: ClientInfo) => readonly AclRule[];
  /**
   * Decides one request by I/O (http): allow, deny, or nomatch (the next source decides).
   * Asked only on a cache miss; must not reject (a failure is nomatch, reported by the source).
   */
  readonly decide?: (info: ClientInfo, action: AuthzAction, topic: string, detail: AuthzDetail | undefined) => Promise<'allow' | 'deny' | 'nomatch'>;
}

/** The PUBLISH's QoS and retain flag (for subscribe: the requested QoS, retain false). */
export interface AuthzDetail {
  readonly qos: number;
  readonly retain: boolean;
}

interface Decision {
  readonly allow: boolean;
  readonly expiresAt: number;
}

class ClientState {
  readonly pub = new Map<string, Decision>();
  readonly sub = new Map<string, Decision>();
  /** Per-client sources' rules, by source index; undefined = not read (or the read failed). */
  clientRules: Array<readonly AclRule[] | undefined> = [];
  rulesReadAt = 0;
  refreshing = false;
  /** Rules that came with the credentials (JWT acl claim), and until when they apply. */
  acl: readonly AclRule[] | undefined = undefined;
  aclExpiresAt = Infinity;
  /** Decisions an asynchronous source is working on, by cache key: one request per key. */
  waiting: Map<string, Promise<'allow' | 'deny'>> | undefined = undefined;
  constructor(readonly peerHost: string, readonly peerPort: number, public superuser: boolean) {}

  same(info: ClientInfo): boolean {
    return this.peerPort === info.peerPort && this.peerHost === info.peerHost;
  }
}

/** `$share/<group>/t` and `$queue/t` are authorized as `t`, as EMQX does. */
function realFilter(filter: string): string {
  if (filter.startsWith('$share/')) {
    const slash = filter.indexOf('/', 7);
    return slash < 0 ? filter : filter.slice(slash + 1);
  }
  if (filter.startsWith('$queue/')) return filter.slice(7);
  return filter;
}

export class Authorizer {
  private readonly clients = new Map<string, ClientState>();
  private readonly noMatchAllow: boolean;
  private readonly cacheOn: boolean;
  private readonly maxSize: number;
  private readonly ttl: number;
  private readonly c: Record<'allow' | 'deny' | 'cacheHit' | 'superuser' | 'matchedAllow' | 'matchedDeny' | 'nomatch', Counter>;
  /** Some rule has qos/retain conditions (or may: per-client sources, acl claims). */
  private conditional: boolean;
  private readonly perClient: boolean;
  /** Called when a per-client source cannot be read (logged and counted by the owner). */
  onSourceFailure: (source: string, info: ClientInfo, err: unknown) => void = () => {};

  constructor(readonly config: AuthorizationConfig, readonly sources: RuleSource[], metrics: Metrics) {
    this.perClient = sources.some((s) => s.fetch !== undefined);
    this.conditional = this.perClient || sources.some((s) => s.rulesFor !== undefined || s.decide !== undefined || s.rules.some(hasConditions));
    this.noMatchAllow = config.no_match === 'allow';
    this.cacheOn = config.cache.enable;
    this.maxSize = config.cache.max_size;
    this.ttl = config.cache.ttl;
    this.c = {
      allow: metrics.counter('authorization.allow'),
      deny: metrics.counter('authorization.deny'),
      cacheHit: metrics.counter('authorization.cache_hit'),
      superuser: metrics.counter('authorization.superuser'),
      matchedAllow: metrics.counter('authorization.matched.allow'),
      matchedDeny: metrics.counter('authorization.matched.deny'),
      nomatch: metrics.counter('authorization.nomatch'),
    };
  }

  /** True when some client could be denied: a rule source or no_match = deny. */
  get active(): boolean {
    return this.sources.length > 0 || !this.noMatchAllow || this.credentialRules;
  }

  /**
   * Some authenticator can hand a client its own rules (a JWT acl claim, an HTTP response's
   * acl field): authorization must run even with no source and no_match = allow.
   */
  credentialRules = false;

  /** True when some source reads rules per client (fetchClientRules has work to do). */
  get hasPerClientSources(): boolean {
    return this.perClient;
  }

  /**
   * Authentication's verdict for a client about to connect: superuser or not, and the rules
   * its credentials carry (JWT acl claim) with the time they stop applying.
   */
  authenticated(info: ClientInfo, superuser: boolean, acl?: readonly AclRule[], aclExpiresAt?: number): void {
    const st = new ClientState(info.peerHost, info.peerPort, superuser);
    if (acl !== undefined) {
      st.acl = acl;
      st.aclExpiresAt = aclExpiresAt ?? Infinity;
      if (acl.some(hasConditions)) this.conditional = true;
    }
    this.clients.set(info.clientId, st);
  }

  /** Rules of every per-client source for this client, read now (CONNECT; refresh). */
  async fetchClientRules(info: ClientInfo): Promise<void> {
    let st = this.clients.get(info.clientId);
    if (st === undefined || !st.same(info)) {
      st = new ClientState(info.peerHost, info.peerPort, false);
      this.clients.set(info.clientId, st);
    }
    st.refreshing = true;
    const read = await Promise.all(this.sources.map(async (s) => {
      if (s.fetch === undefined) return undefined;
      try {
        return await s.fetch(info);
      } catch (err) {
        this.onSourceFailure(s.name, info, err);
        return undefined;
      }
    }));
    st.refreshing = false;
    // The client may have gone (or been taken over) while the backends answered.
    if (this.clients.get(info.clientId) !== st) return;
    st.clientRules = read;
    st.rulesReadAt = Date.now();
    st.pub.clear();
    st.sub.clear();
  }

  /** The client is connected: from now on its decisions are cached. */
  connected(info: ClientInfo): void {
    const st = this.clients.get(info.clientId);
    if (st === undefined || !st.same(info)) this.clients.set(info.clientId, new ClientState(info.peerHost, info.peerPort, false));
  }

  /** The client's connection closed: forget its state and decisions. */
  disconnected(info: ClientInfo): void {
    const st = this.clients.get(info.clientId);
    if (st !== undefined && st.same(info)) this.clients.delete(info.clientId);
  }

  /** Drops every cached decision (the rules changed). Superuser flags stay. */
  clearCache(): void {
    for (const st of this.clients.values()) {
      st.pub.clear();
      st.sub.clear();
    }
  }

  /** Number of decisions cached for a client (tests, diagnostics). */
  cached(clientId: string): number {
    const st = this.clients.get(clientId);
    return st === undefined ? 0 : st.pub.size + st.sub.size;
  }

  isSuperuser(info: ClientInfo): boolean {
    const st = this.clients.get(info.clientId);
    return st !== undefined && st.same(info) && st.superuser;
  }

  /**
   * The decision, for callers that cannot wait: while an asynchronous source (http) is still
   * deciding, deny (fail closed); the answer fills the cache for the next call.
   */
  authorize(info: ClientInfo, action: AuthzAction, topic: string, detail?: AuthzDetail): 'allow' | 'deny' {
    const d = this.decide(info, action, topic, detail);
    return typeof d === 'string' ? d : 'deny';
  }

  /**
   * The decision for one PUBLISH (topic name) or subscription (filter), on the channel's turn;
   * `detail` carries the QoS and retain flag for conditional rules. Synchronous unless an
   * asynchronous source (http) has to be asked, which happens only on a cache miss; then a
   * Promise, shared by every request for the same client, action and key meanwhile.
   */
  decide(info: ClientInfo, action: AuthzAction, topic: string, detail?: AuthzDetail): 'allow' | 'deny' | Promise<'allow' | 'deny'> {
    let st = this.clients.get(info.clientId);
    if (st !== undefined && !st.same(info)) st = undefined;
    if (st?.superuser === true) {
      this.c.superuser.inc();
      this.c.allow.inc();
      return 'allow';
    }
    if (st === undefined) return this.counted(this.evaluate(info, action, topic, detail, st));
    if (st.acl === undefined && this.sources.length === 0) return this.count(this.noMatchAllow);
    const now = Date.now();
    if (this.perClient && !st.refreshing && now - st.rulesReadAt >= this.ttl) {
      // Stale per-client rules: read them again in the background; these serve meanwhile.
      st.refreshing = true;
      void this.fetchClientRules(info);
    }
    if (!this.cacheOn) return this.counted(this.evaluate(info, action, topic, detail, st));
    const cache = action === 'publish' ? st.pub : st.sub;
    // Conditional rules: the same topic may be allowed at QoS 0 and denied at QoS 2.
    const key = this.conditional && detail !== undefined ? `${detail.qos}${detail.retain ? 1 : 0}${topic}` : topic;
    const hit = cache.get(key);
    if (hit !== undefined) {
      if (hit.expiresAt > now) {
        this.c.cacheHit.inc();
        return this.count(hit.allow);
      }
      cache.delete(key);
    }
    const allow = this.evaluate(info, action, topic, detail, st);
    if (typeof allow !== 'boolean') return this.later(info.clientId, st, cache, action === 'publish' ? `p${key}` : `s${key}`, key, allow);
    this.remember(st, cache, key, allow, now);
    return this.count(allow);
  }

  private remember(st: ClientState, cache: Map<string, Decision>, key: string, allow: boolean, now: number): void {
    if (st.pub.size + st.sub.size >= this.maxSize) {
      // Forget the oldest decision of the fuller map (insertion order).
      const from = st.pub.size >= st.sub.size ? st.pub : st.sub;
      const oldest = from.keys().next();
      if (oldest.done !== true) from.delete(oldest.value);
    }
    cache.set(key, { allow, expiresAt: now + this.ttl });
  }

  /** An asynchronous decision: counted and cached when it lands; one per key meanwhile. */
  private later(clientId: string, st: ClientState, cache: Map<string, Decision>, wkey: string, key: string, p: Promise<boolean>): Promise<'allow' | 'deny'> {
    const known = st.waiting?.get(wkey);
    if (known !== undefined) return known;
    const done = p.then(
      (allow) => {
        st.waiting?.delete(wkey);
        // The client gone (or taken over) meanwhile: answer, but cache nothing for it.
        if (this.clients.get(clientId) === st) this.remember(st, cache, key, allow, Date.now());
        return this.count(allow);
      },
      () => {
        st.waiting?.delete(wkey);
        return this.count(false); // a source that broke its promise: fail closed
      },
    );
    (st.waiting ??= new Map()).set(wkey, done);
    return done;
  }

  private counted(allow: boolean | Promise<boolean>): 'allow' | 'deny' | Promise<'allow' | 'deny'> {
    if (typeof allow === 'boolean') return this.count(allow);
    return allow.then((a) => this.count(a), () => this.count(false));
  }

  private matched(rule: AclRule): boolean {
    if (rule.permission === 'allow') {
      this.c.matchedAllow.inc();
      return true;
    }
    this.c.matchedDeny.inc();
    return false;
  }

  private count(allow: boolean): 'allow' | 'deny' {
    if (allow) {
      this.c.allow.inc();
      return 'allow';
    }
    this.c.deny.inc();
    return 'deny';
  }

  /**
   * The rules' answer: the credentials' own rules (JWT acl claim) first, then the first
   * matching rule of the first source that has one, else no_match.
   */
  evaluate(info: ClientInfo, action: AuthzAction, topic: string, detail?: AuthzDetail, st?: ClientState, from = 0): boolean | Promise<boolean> {
    const t = action === 'subscribe' ? realFilter(topic) : topic;
    const qos = detail?.qos;
    const retain = detail?.retain;
    if (from === 0 && st?.acl !== undefined) {
      // An expired token's rules deny everything, as EMQX's client_info source does.
      if (Date.now() >= st.aclExpiresAt) {
        this.c.matchedDeny.inc();
        return false;
      }
      for (const rule of st.acl) {
        if (ruleMatches(rule, info, action, t, qos, retain)) return this.matched(rule);
      }
    }
    for (let i = from; i < this.sources.length; i++) {
      const source = this.sources[i]!;
      if (source.decide !== undefined) return this.asked(source.decide, i, info, action, topic, detail, st);
      const rules = source.rulesFor !== undefined ? source.rulesFor(info) : source.fetch === undefined ? source.rules : st?.clientRules[i] ?? [];
      for (const rule of rules) {
        if (ruleMatches(rule, info, action, t, qos, retain)) {
          if (rule.permission === 'allow') {
            this.c.matchedAllow.inc();
            return true;
          }
          this.c.matchedDeny.inc();
          return false;
        }
      }
    }
    this.c.nomatch.inc();
    return this.noMatchAllow;
  }

  /** Source `i` decides by I/O; nomatch goes on with the sources after it. */
  private async asked(
    decide: NonNullable<RuleSource['decide']>, i: number, info: ClientInfo, action: AuthzAction, topic: string, detail: AuthzDetail | undefined, st: ClientState | undefined,
  ): Promise<boolean> {
    const r = await decide(info, action, action === 'subscribe' ? realFilter(topic) : topic, detail);
    if (r === 'allow') {
      this.c.matchedAllow.inc();
      return true;
    }
    if (r === 'deny') {
      this.c.matchedDeny.inc();
      return false;
    }
    return this.evaluate(info, action, topic, detail, st, i + 1);
  }
}
