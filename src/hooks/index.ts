/**
 * Hookpoints: the named places where the control plane (auth, rules, integrations, tracing)
 * observes or steers the message plane. The catalog below is the contract: names are stable,
 * payload types are fixed per name.
 *
 * Contract of the runner: callbacks run synchronously, in priority order (higher first), on
 * the event-loop turn of the event. A callback that throws is caught, reported through
 * `onError`, and skipped: a broken hook never breaks delivery. `client.authenticate` and
 * `client.authorize` are the only hookpoints whose callbacks return a decision; the broker
 * calls them only where it may await (CONNECT) or through a cache.
 */

export interface ClientInfo {
  clientId: string;
  username: string | undefined;
  peerHost: string;
  peerPort: number;
  protocolVersion: number;
  listener: string;
  /** When the CONNECT was accepted (ms since epoch); 0 before that. */
  connectedAt?: number;
  /**
   * The verified TLS client certificate (ssl/wss listeners; only the CN for a PROXY v2 header),
   * absent without one: CN, subject DN as `CN=client1,O=Petrel`, and the PEM text.
   */
  certCommonName?: string;
  certSubject?: string;
  certPem?: string;
}

export interface HookMessage {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  from: string;
  timestamp: number;
}

export type AuthDecision = 'allow' | 'deny' | 'ignore';

/** What an authorization decision may also depend on (acl.conf `{publish, [{qos, 1}, {retain, true}]}`). */
export interface AuthorizeDetail {
  qos: number;
  retain: boolean;
}
/**
 * What an authenticator answers: a plain decision, or a denial with the CONNACK reason code
 * to send (0x86 Bad User Name or Password, 0x87 Not Authorized, 0x8A Banned, ...).
 */
export type AuthnDecision =
  | AuthDecision
  | { result: 'deny'; reasonCode: number }
  /** Allowed until `expiresAt` (ms since epoch, e.g. a JWT's exp): the channel closes the connection then. */
  | { result: 'allow'; expiresAt: number };

/** A ban that refuses a CONNECT (the auth room's banned list): what matched, for the log. */
export interface BanHit {
  /** clientid, username, peerhost, peerhost_net, clientid_re or username_re. */
  readonly as: string;
  readonly who: string;
}

/** One answer of an enhanced-authentication exchange (MQTT 5 AUTH, section 4.12). */
export type EnhancedAuthStep =
  | { readonly result: 'continue'; readonly data: Buffer }
  | {
    readonly result: 'allow';
    /** Sent in the CONNACK (or the AUTH 0x00 of a re-authentication). */
    readonly data: Buffer | undefined;
    /** The identity proven (a SCRAM user name). */
    readonly username: string;
  }
  /** reasonCode: 0x87 Not Authorized (bad proof, unknown user, malformed exchange). */
  | { readonly result: 'deny'; readonly reasonCode: number };

/** One client's exchange for one Authentication Method; fed the client's data until it decides. */
export interface EnhancedAuthExchange {
  step(data: Buffer | undefined): Promise<EnhancedAuthStep>;
}

/**
 * What the CONNECT and AUTH handlers ask the control plane directly, besides the hook chains:
 * the banned list (checked before authentication, EMQX check_banned) and enhanced
 * authentication. Set once by the auth room (`Hooks.connectGate`); null: nobody is banned and
 * no Authentication Method is offered.
 */
export interface ConnectGate {
  /** The ban matching the client, if any; O(1) for ids and names, O(#CIDR and regex bans) else. */
  banned(info: ClientInfo): BanHit | undefined;
  /**
   * Starts an exchange for `method` (CONNECT, or AUTH 0x19 re-authentication), or undefined
   * when no authenticator offers it (CONNACK / DISCONNECT 0x8C). `info.username` set: the
   * exchange must prove that user.
   */
  enhancedAuth(method: string, info: ClientInfo): EnhancedAuthExchange | undefined;
}

export interface HookCatalog {
  'client.connect': (info: ClientInfo) => void;
  'client.connected': (info: ClientInfo) => void;
  'client.disconnected': (info: ClientInfo, reason: string) => void;
  'client.authenticate': (info: ClientInfo, password: Buffer | undefined) => AuthnDecision | Promise<AuthnDecision>;
  /** `detail`: the PUBLISH's QoS and retain flag (subscribe: requested QoS, retain false). */
  /**
   * Answers at once, or with a Promise when the decision needs I/O (an http source on a cache
   * miss); the channel then holds the client's later packets until it settles.
   */
  'client.authorize': (info: ClientInfo, action: 'publish' | 'subscribe', topic: string, detail?: AuthorizeDetail) => AuthDecision | Promise<AuthDecision>;
  'client.subscribe': (info: ClientInfo, filter: string, qos: number) => void;
  'client.unsubscribe': (info: ClientInfo, filter: string) => void;
  'session.created': (clientId: string) => void;
  'session.resumed': (clientId: string) => void;
  'session.discarded': (clientId: string) => void;
  'session.takenover': (clientId: string) => void;
  'session.terminated': (clientId: string, reason: string) => void;
  'message.publish': (msg: HookMessage) => void;
  'message.delivered': (clientId: string, msg: HookMessage) => void;
  'message.acked': (clientId: string, msg: HookMessage) => void;
  'message.dropped': (msg: HookMessage, reason: string) => void;
}
export type HookName = keyof HookCatalog;
export const HOOK_NAMES: readonly HookName[] = [
  'client.connect', 'client.connected', 'client.disconnected', 'client.authenticate', 'client.authorize',
  'client.subscribe', 'client.unsubscribe', 'session.created', 'session.resumed', 'session.discarded',
  'session.takenover', 'session.terminated', 'message.publish', 'message.delivered', 'message.acked',
  'message.dropped',
];

interface Entry<F> {
  fn: F;
  priority: number;
}

export class Hooks {
  private readonly table = new Map<HookName, Entry<unknown>[]>();
  /** Banned list and enhanced authentication (see ConnectGate); set by the auth room. */
  connectGate: ConnectGate | null = null;
  /** Called with the hook name and the error when a callback throws. */
  onError: (name: HookName, err: unknown) => void = () => {};

  on<K extends HookName>(name: K, fn: HookCatalog[K], priority = 0): () => void {
    const list = (this.table.get(name) ?? []) as Entry<HookCatalog[K]>[];
    list.push({ fn, priority });
    list.sort((a, b) => b.priority - a.priority);
    this.table.set(name, list as Entry<unknown>[]);
    return () => this.off(name, fn);
  }

  off<K extends HookName>(name: K, fn: HookCatalog[K]): void {
    const list = this.table.get(name);
    if (!list) return;
    const i = list.findIndex((e) => e.fn === fn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.table.delete(name);
  }

  /** Cheap check so hot paths skip building payloads nobody listens to. */
  has(name: HookName): boolean {
    return this.table.has(name);
  }

  /** Runs notification hooks (return values ignored). */
  run<K extends HookName>(name: K, ...args: Parameters<HookCatalog[K]>): void {
    const list = this.table.get(name);
    if (list === undefined) return;
    for (const e of list) {
      try {
        (e.fn as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        this.onError(name, err);
      }
    }
  }

  /**
   * Runs decision hooks until one answers allow or deny; 'ignore' passes to the next.
   * Returns 'ignore' when no callback decided; rejects when a callback throws.
   */
  async decide<K extends 'client.authenticate' | 'client.authorize'>(
    name: K,
    ...args: Parameters<HookCatalog[K]>
  ): Promise<AuthnDecision> {
    const list = this.table.get(name);
    if (list === undefined) return 'ignore';
    for (const e of list) {
      try {
        const d = await (e.fn as (...a: unknown[]) => AuthnDecision | Promise<AuthnDecision>)(...args);
        if (d === 'allow' || d === 'deny' || (typeof d === 'object' && d !== null && (d.result === 'deny' || d.result === 'allow'))) return d;
      } catch (err) {
        // A decision that could not be made is not a pass: report it and let the caller
        // refuse (an authentication backend that is down must not let clients in).
        this.onError(name, err);
        throw err;
      }
    }
    return 'ignore';
  }

  /**
   * Synchronous decision. A callback that answers with a Promise counts as deny here (fail
   * closed); callers that can wait use `authorize`.
   */
  decideSync(_name: 'client.authorize', ...args: Parameters<HookCatalog['client.authorize']>): AuthDecision {
    const d = this.authorize(...args);
    if (typeof d === 'string') return d;
    d.catch(() => {});
    return 'deny';
  }

  /**
   * Authorization on the publish/subscribe path: synchronous (no allocation beyond the
   * callbacks') unless a callback answers with a Promise; then a Promise of the decision of it
   * and the callbacks after it. A callback that throws or rejects is reported and skipped.
   */
  authorize(...args: Parameters<HookCatalog['client.authorize']>): AuthDecision | Promise<AuthDecision> {
    const list = this.table.get('client.authorize');
    if (list === undefined) return 'ignore';
    return this.authorizeFrom(list, 0, args);
  }

  private authorizeFrom(list: Entry<unknown>[], from: number, args: Parameters<HookCatalog['client.authorize']>): AuthDecision | Promise<AuthDecision> {
    for (let i = from; i < list.length; i++) {
      let d: AuthDecision | Promise<AuthDecision>;
      try {
        d = (list[i]!.fn as HookCatalog['client.authorize'])(...args);
      } catch (err) {
        this.onError('client.authorize', err);
        continue;
      }
      if (d === 'allow' || d === 'deny') return d;
      if (typeof d === 'object') {
        return d.then(
          (v) => (v === 'allow' || v === 'deny' ? v : this.authorizeFrom(list, i + 1, args)),
          (err: unknown) => {
            this.onError('client.authorize', err);
            return this.authorizeFrom(list, i + 1, args);
          },
        );
      }
    }
    return 'ignore';
  }
}
