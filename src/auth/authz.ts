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
 */
import type { AuthorizationConfig } from '../config/index.js';
import type { ClientInfo } from '../hooks/index.js';
import type { Counter, Metrics } from '../observability/index.js';
import { ruleMatches, type AclRule } from './acl.js';

export type AuthzAction = 'publish' | 'subscribe';

/** A named list of rules (one `authorization.sources.<name>`). */
export interface RuleSource {
  readonly name: string;
  rules: readonly AclRule[];
}

interface Decision {
  readonly allow: boolean;
  readonly expiresAt: number;
}

class ClientState {
  readonly pub = new Map<string, Decision>();
  readonly sub = new Map<string, Decision>();
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

  constructor(readonly config: AuthorizationConfig, readonly sources: RuleSource[], metrics: Metrics) {
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
    return this.sources.length > 0 || !this.noMatchAllow;
  }

  /** Authentication's verdict for a client about to connect (superuser or not). */
  authenticated(info: ClientInfo, superuser: boolean): void {
    this.clients.set(info.clientId, new ClientState(info.peerHost, info.peerPort, superuser));
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

  authorize(info: ClientInfo, action: AuthzAction, topic: string): 'allow' | 'deny' {
    let st = this.clients.get(info.clientId);
    if (st !== undefined && !st.same(info)) st = undefined;
    if (st?.superuser === true) {
      this.c.superuser.inc();
      this.c.allow.inc();
      return 'allow';
    }
    if (!this.cacheOn || st === undefined) return this.count(this.evaluate(info, action, topic));
    const cache = action === 'publish' ? st.pub : st.sub;
    const now = Date.now();
    const hit = cache.get(topic);
    if (hit !== undefined) {
      if (hit.expiresAt > now) {
        this.c.cacheHit.inc();
        return this.count(hit.allow);
      }
      cache.delete(topic);
    }
    const allow = this.evaluate(info, action, topic);
    if (st.pub.size + st.sub.size >= this.maxSize) {
      // Forget the oldest decision of the fuller map (insertion order).
      const from = st.pub.size >= st.sub.size ? st.pub : st.sub;
      const oldest = from.keys().next();
      if (oldest.done !== true) from.delete(oldest.value);
    }
    cache.set(topic, { allow, expiresAt: now + this.ttl });
    return this.count(allow);
  }

  private count(allow: boolean): 'allow' | 'deny' {
    if (allow) {
      this.c.allow.inc();
      return 'allow';
    }
    this.c.deny.inc();
    return 'deny';
  }

  /** The rules' answer: the first matching rule of the first source that has one, else no_match. */
  evaluate(info: ClientInfo, action: AuthzAction, topic: string): boolean {
    const t = action === 'subscribe' ? realFilter(topic) : topic;
    for (const source of this.sources) {
      for (const rule of source.rules) {
        if (ruleMatches(rule, info, action, t)) {
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
}
