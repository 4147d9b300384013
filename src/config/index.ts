/**
 * Public facade of the config room: the schema, the loader and the value parsers. Other rooms
 * import from here only, never from the files behind it.
 */
export type { KeySpec, KeyType } from './schema.js';
export { keySpecs, findKeySpec } from './schema.js';
export type { LoadConfigOptions } from './loader.js';
export { loadConfig, defaultConfig, resolveSetting } from './loader.js';
export type { ConfigIssue } from './errors.js';
export { ConfigError } from './errors.js';
export { ValueParseError, parseDuration, parseByteSize, parseBind, parseRate, parseRateBurst } from './parsers.js';
export { envName } from './sources.js';
export { renderConfigDocs } from './docs.js';
export type {
  PetrelConfig,
  NodeConfig,
  LogConfig,
  ListenersConfig,
  TcpListenerConfig,
  SslListenerConfig,
  WsListenerConfig,
  WssListenerConfig,
  SslOptionsConfig,
  WebSocketOptionsConfig,
  NamedListeners,
  ListenerType,
  TlsVerify,
  PeerCertAs,
  MqttConfig,
  RetainerConfig,
  DelayedConfig,
  DurableStorageConfig,
  SysTopicsConfig,
  CtlConfig,
  PrometheusConfig,
  BindAddress,
  RateLimit,
  RateLimitWithBurst,
  ForceShutdownConfig,
  BackpressureConfig,
  OverloadProtectionConfig,
  LogLevel,
  LogFormat,
  SharedSubscriptionStrategy,
  AuthenticatorConfig,
  PasswordHashAlgorithmConfig,
  AuthorizationConfig,
  AuthorizationSourceConfig,
  FlappingDetectConfig,
} from './types.js';
export { LOG_LEVELS, LOG_FORMATS, SHARED_SUBSCRIPTION_STRATEGIES, LISTENER_TYPES, TLS_VERIFY, PEER_CERT_AS,
  PASSWORD_HASH_ALGORITHMS, SALT_POSITIONS, PBKDF2_MAC_FUNS, USER_ID_TYPES, BOOTSTRAP_TYPES, ENABLE_AUTHN } from './types.js';
