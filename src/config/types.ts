/**
 * The shape of a loaded config, written by hand so that readers of `cfg.mqtt.max_inflight` get
 * real types. It mirrors the schema key for key (snake_case, nested by the dots); the test
 * test/config/defaults.test.ts fails when this file, the schema and the loader disagree.
 *
 * Units are resolved: durations are milliseconds, sizes are bytes, `infinity` is `Infinity`.
 */

// The enum lists live here (not in schema.ts) so that the TypeScript unions below are derived
// from the very arrays the schema validates against.
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export const SHARED_SUBSCRIPTION_STRATEGIES = [
  'random',
  'round_robin',
  'round_robin_per_group',
  'sticky',
  'hash_clientid',
  'hash_topic',
] as const;

/** Listener types, in the order they are created (tcp first). */
export const LISTENER_TYPES = ['tcp', 'ssl', 'ws', 'wss'] as const;
export const TLS_VERIFY = ['verify_none', 'verify_peer'] as const;
/** What of a verified client certificate replaces the CONNECT's username / client id (EMQX). */
export const PEER_CERT_AS = ['disabled', 'cn', 'dn', 'crt', 'pem', 'md5'] as const;

// Authentication and authorization (EMQX 5.8's names).
export const AUTHN_MECHANISMS = ['password_based', 'jwt', 'scram'] as const;
export const AUTHN_BACKENDS = ['built_in_database', 'http', 'redis', 'mysql', 'postgresql'] as const;
export const HTTP_METHODS = ['get', 'post'] as const;
export const REDIS_TYPES = ['single'] as const;
export const JWT_ALGORITHMS = ['hmac-based', 'public-key'] as const;
/** `algorithm` is jwt's key and scram's (EMQX uses the one name for both). */
export const AUTHN_ALGORITHMS = [...JWT_ALGORITHMS, 'sha256', 'sha512'] as const;
/** A listener's `enable_authn` (EMQX): authenticate, skip, or refuse clients without a username first. */
export const ENABLE_AUTHN = ['true', 'false', 'quick_deny_anonymous'] as const;
export const JWT_FROM = ['password', 'username'] as const;
export const USER_ID_TYPES = ['username', 'clientid'] as const;
export const PASSWORD_HASH_ALGORITHMS = ['plain', 'md5', 'sha', 'sha256', 'sha512', 'bcrypt', 'pbkdf2'] as const;
export const SALT_POSITIONS = ['disable', 'prefix', 'suffix'] as const;
/** PBKDF2 MAC functions that OpenSSL 3 offers without its legacy provider. */
export const PBKDF2_MAC_FUNS = ['md5', 'sha', 'sha224', 'sha256', 'sha384', 'sha512'] as const;
export const BOOTSTRAP_TYPES = ['plain', 'hash'] as const;
export const AUTHZ_SOURCE_TYPES = ['file', 'built_in_database', 'http', 'redis', 'mysql', 'postgresql'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];
export type ListenerType = (typeof LISTENER_TYPES)[number];
export type TlsVerify = (typeof TLS_VERIFY)[number];
export type PeerCertAs = (typeof PEER_CERT_AS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];
/** A `map` key's value: a TOML table of strings (numbers and booleans given are made strings). */
export type ConfigMap = Readonly<Record<string, string>>;
export type SharedSubscriptionStrategy = (typeof SHARED_SUBSCRIPTION_STRATEGIES)[number];

/** A resolved `bind` value: `"0.0.0.0:1883"` becomes `{ host: '0.0.0.0', port: 1883 }`. */
export interface BindAddress {
  readonly host: string;
  readonly port: number;
}

/** A resolved `rate` value: `"10MB/2s"` becomes `{ amount: 10485760, periodMs: 2000 }`. */
export interface RateLimit {
  readonly amount: number;
  readonly periodMs: number;
}

/**
 * A resolved `rate_limit` value (the older `"rate,burst"` form, in bytes): `"1024,4096"` becomes
 * `{ amount: 1024, periodMs: 1000, burst: 4096 }`; `burst` is the bucket's capacity.
 */
export interface RateLimitWithBurst extends RateLimit {
  readonly burst: number;
}

export interface NodeConfig {
  readonly name: string;
  readonly data_dir: string;
}

export interface LogConfig {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

/** What every listener has, whatever its type (`listeners.<type>.<name>.*`). */
export interface TcpListenerConfig {
  readonly enable: boolean;
  readonly bind: BindAddress;
  /** Infinity when unlimited. */
  readonly max_connections: number;
  /** New connections per period; null when unlimited. */
  readonly max_conn_rate: RateLimit | null;
  readonly proxy_protocol: boolean;
  /** Milliseconds. */
  readonly proxy_protocol_timeout: number;
  /** PUBLISH packets per period, for each client; null when unlimited. */
  readonly messages_rate: RateLimit | null;
  /** Messages a client may send at once beyond one period of messages_rate. */
  readonly messages_burst: number;
  /** Bytes per period, for each client; null when unlimited. */
  readonly bytes_rate: RateLimit | null;
  /** Bytes a client may send at once beyond one period of bytes_rate. */
  readonly bytes_burst: number;
  /** The older per-client byte limit (`"1024,4096"`); used when bytes_rate is null. */
  readonly rate_limit: RateLimitWithBurst | null;
  /** PUBLISH packets per period, all clients of the listener together; null when unlimited. */
  readonly total_messages_rate: RateLimit | null;
  readonly total_messages_burst: number;
  /** Bytes per period, all clients of the listener together; null when unlimited. */
  readonly total_bytes_rate: RateLimit | null;
  readonly total_bytes_burst: number;
  /** Topic prefix of this listener's clients, as written (placeholders unresolved); "" for none. */
  readonly mountpoint: string;
  /** Replaces the CONNECT's username / client id with a field of the verified client certificate. */
  readonly peer_cert_as_username: PeerCertAs;
  readonly peer_cert_as_clientid: PeerCertAs;
  /** 'false': no authentication on this listener; 'quick_deny_anonymous': clients without a username refused first. */
  readonly enable_authn: (typeof ENABLE_AUTHN)[number];
}

/** `listeners.{ssl,wss}.<name>.ssl_options`. Empty strings mean "not set". */
export interface SslOptionsConfig {
  readonly certfile: string;
  readonly keyfile: string;
  readonly cacertfile: string;
  readonly verify: TlsVerify;
  readonly fail_if_no_peer_cert: boolean;
  /** Comma-separated, as written (`tlsv1.3,tlsv1.2`). */
  readonly versions: string;
  /** Comma-separated OpenSSL names, as written; empty for Node's defaults. */
  readonly ciphers: string;
  readonly reuse_sessions: boolean;
}

/** `listeners.{ws,wss}.<name>.websocket`. */
export interface WebSocketOptionsConfig {
  readonly mqtt_path: string;
  readonly fail_if_no_subprotocol: boolean;
  /** Comma-separated, as written. */
  readonly supported_subprotocols: string;
  /** Lower or mixed case as written; empty when not used. */
  readonly proxy_address_header: string;
  readonly proxy_port_header: string;
}

export interface SslListenerConfig extends TcpListenerConfig {
  readonly ssl_options: SslOptionsConfig;
}

export interface WsListenerConfig extends TcpListenerConfig {
  readonly websocket: WebSocketOptionsConfig;
}

export interface WssListenerConfig extends TcpListenerConfig {
  readonly ssl_options: SslOptionsConfig;
  readonly websocket: WebSocketOptionsConfig;
}

/** Named listeners of one type: `default` is always present (its `enable` may be false). */
export type NamedListeners<T> = { readonly default: T; readonly [name: string]: T };

export interface ListenersConfig {
  readonly tcp: NamedListeners<TcpListenerConfig>;
  readonly ssl: NamedListeners<SslListenerConfig>;
  readonly ws: NamedListeners<WsListenerConfig>;
  readonly wss: NamedListeners<WssListenerConfig>;
}

export interface MqttConfig {
  readonly max_packet_size: number;
  readonly max_clientid_len: number;
  readonly max_topic_levels: number;
  readonly max_qos_allowed: number;
  readonly max_topic_alias: number;
  readonly retain_available: boolean;
  readonly wildcard_subscription: boolean;
  readonly shared_subscription: boolean;
  readonly exclusive_subscription: boolean;
  readonly idle_timeout: number;
  readonly keepalive_multiplier: number;
  readonly max_subscriptions: number;
  readonly upgrade_qos: boolean;
  readonly max_inflight: number;
  readonly retry_interval: number;
  readonly max_awaiting_rel: number;
  readonly await_rel_timeout: number;
  readonly session_expiry_interval: number;
  readonly message_expiry_interval: number;
  readonly max_mqueue_len: number;
  readonly mqueue_store_qos0: boolean;
  readonly shared_subscription_strategy: SharedSubscriptionStrategy;
  /** Milliseconds, or null when disabled (the client's own keepalive is used). */
  readonly server_keepalive: number | null;
  readonly ignore_loop_deliver: boolean;
  readonly response_information: string;
  readonly use_username_as_clientid: boolean;
}

export interface RetainerConfig {
  readonly enable: boolean;
  /** 0 = unlimited. */
  readonly max_retained_messages: number;
  readonly max_payload_size: number;
  /** 0 = retained messages never expire. */
  readonly msg_expiry_interval: number;
}

export interface DelayedConfig {
  readonly enable: boolean;
  /** 0 = unlimited. */
  readonly max_delayed_messages: number;
}

/** `force_shutdown.*`: closing a connection that holds too much (EMQX's names). */
export interface ForceShutdownConfig {
  readonly enable: boolean;
  /** mqueue growth (messages) while connected; Infinity = no limit. */
  readonly max_mailbox_size: number;
  /** Bytes queued for the socket; Infinity = no limit. */
  readonly max_heap_size: number;
}

/** `backpressure.*`: slow subscribers slow their publishers (src/broker/backpressure.ts). */
export interface BackpressureConfig {
  readonly enable: boolean;
  /** Messages. */
  readonly hold_at: number;
  /** Milliseconds. */
  readonly max_hold: number;
}

/** `overload_protection.*`: refusing new connections while the process is overloaded. */
export interface OverloadProtectionConfig {
  readonly enable: boolean;
  readonly backoff_new_conn: boolean;
  /** Resident set size in bytes; Infinity = not checked. */
  readonly max_memory: number;
  /** Milliseconds; Infinity = not checked. */
  readonly max_event_loop_delay: number;
  /** Milliseconds. */
  readonly check_interval: number;
}

export interface DurableStorageConfig {
  readonly mode: 'durable' | 'memory';
  readonly sync: 'normal' | 'full';
}

/** `dashboard.*`: the REST API's HTTP listener and its admin user. */
export interface DashboardConfig {
  readonly listeners: { readonly http: { readonly enable: boolean; readonly bind: BindAddress } };
  /** Empty: generated on first start (node.data_dir/dashboard-admin-password). */
  readonly default_password: string;
}

/** `api_key.*`: API keys for HTTP Basic access to the REST API. */
export interface ApiKeyConfig {
  /** Empty: none. Lines `key:secret:role`. */
  readonly bootstrap_file: string;
}

/** `prometheus.*`. */
export interface PrometheusConfig {
  readonly enable_basic_auth: boolean;
}

/** `ctl.*`: the Unix socket `petrel ctl` talks to. */
export interface CtlConfig {
  readonly enable: boolean;
  /** Relative paths are inside node.data_dir. */
  readonly socket: string;
}

/** `sys_topics.*`: what the broker publishes under `$SYS/brokers/<node>/` (EMQX's names). */
export interface SysTopicsConfig {
  /** Milliseconds; null = disabled (never published). */
  readonly sys_msg_interval: number | null;
  /** Milliseconds; null = disabled (never published). */
  readonly sys_heartbeat_interval: number | null;
  readonly sys_event_messages: {
    readonly client_connected: boolean;
    readonly client_disconnected: boolean;
    readonly client_subscribed: boolean;
    readonly client_unsubscribed: boolean;
  };
}

/** `authentication.<name>.password_hash_algorithm`. */
export interface PasswordHashAlgorithmConfig {
  readonly name: (typeof PASSWORD_HASH_ALGORITHMS)[number];
  readonly salt_position: (typeof SALT_POSITIONS)[number];
  readonly salt_rounds: number;
  readonly mac_fun: (typeof PBKDF2_MAC_FUNS)[number];
  readonly iterations: number;
  /** 0 = the output size of mac_fun. */
  readonly dk_length: number;
}

/**
 * The external backend keys shared by authenticators and authorization sources (http, redis,
 * mysql, postgresql). `headers`/`body`: name -> value (placeholders allowed); durations in milliseconds.
 */
export interface AuthBackendConfig {
  readonly method: (typeof HTTP_METHODS)[number];
  readonly url: string;
  readonly headers: ConfigMap;
  readonly body: ConfigMap;
  readonly request_timeout: number;
  readonly pool_size: number;
  /** Empty: 127.0.0.1 on the backend's default port. */
  readonly server: string;
  readonly redis_type: (typeof REDIS_TYPES)[number];
  readonly database: string;
  readonly username: string;
  readonly password: string;
  readonly cmd: string;
  readonly query: string;
}

/** `authentication.<name>`: one authenticator of the chain. */
export interface AuthenticatorConfig extends AuthBackendConfig {
  readonly enable: boolean;
  readonly mechanism: (typeof AUTHN_MECHANISMS)[number];
  readonly backend: (typeof AUTHN_BACKENDS)[number];
  readonly user_id_type: (typeof USER_ID_TYPES)[number];
  readonly password_hash_algorithm: PasswordHashAlgorithmConfig;
  /** Empty: none. */
  readonly bootstrap_file: string;
  readonly bootstrap_type: (typeof BOOTSTRAP_TYPES)[number];
  readonly use_jwks: boolean;
  /** jwt: hmac-based | public-key; scram: sha256 | sha512 (the default hmac-based means sha256). */
  readonly algorithm: (typeof AUTHN_ALGORITHMS)[number];
  /** scram: PBKDF2 iterations for new or changed users. */
  readonly iteration_count: number;
  readonly secret: string;
  readonly secret_base64_encoded: boolean;
  readonly public_key: string;
  readonly endpoint: string;
  /** Milliseconds. */
  readonly refresh_interval: number;
  readonly from: (typeof JWT_FROM)[number];
  /** Claim name -> expected value (placeholders allowed). */
  readonly verify_claims: ConfigMap;
  readonly acl_claim_name: string;
  /** jwt: close the connection when the token's exp passes. */
  readonly disconnect_after_expire: boolean;
}

/** `authorization.sources.<name>`. */
export interface AuthorizationSourceConfig extends AuthBackendConfig {
  readonly type: (typeof AUTHZ_SOURCE_TYPES)[number];
  readonly enable: boolean;
  /** Empty: the default acl.conf EMQX ships. */
  readonly path: string;
}

/** `authorization.*`. */
export interface AuthorizationConfig {
  readonly no_match: 'allow' | 'deny';
  readonly deny_action: 'ignore' | 'disconnect';
  /** ttl in milliseconds. */
  readonly cache: { readonly enable: boolean; readonly max_size: number; readonly ttl: number };
  /** Absent when the config names no source; in config order otherwise. */
  readonly sources?: Readonly<Record<string, AuthorizationSourceConfig>>;
}

/** `flapping_detect.*`: durations in milliseconds. */
export interface FlappingDetectConfig {
  readonly enable: boolean;
  readonly max_count: number;
  readonly window_time: number;
  readonly ban_time: number;
}

export interface PetrelConfig {
  readonly node: NodeConfig;
  readonly log: LogConfig;
  readonly listeners: ListenersConfig;
  readonly mqtt: MqttConfig;
  readonly force_shutdown: ForceShutdownConfig;
  readonly backpressure: BackpressureConfig;
  readonly overload_protection: OverloadProtectionConfig;
  readonly retainer: RetainerConfig;
  readonly delayed: DelayedConfig;
  readonly durable_storage: DurableStorageConfig;
  /** Absent when the config names no authenticator (every client may connect); in config order otherwise. */
  readonly authentication?: Readonly<Record<string, AuthenticatorConfig>>;
  readonly authorization: AuthorizationConfig;
  readonly flapping_detect: FlappingDetectConfig;
  readonly dashboard: DashboardConfig;
  readonly api_key: ApiKeyConfig;
  readonly sys_topics: SysTopicsConfig;
  readonly ctl: CtlConfig;
  readonly prometheus: PrometheusConfig;
}
