// Defaults, and the drift checks between schema.ts, types.ts and the loader: the literal below
// is typed PetrelConfig (so the compiler holds it to types.ts) and compared with the loaded
// defaults (so the loader and schema are held to it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultConfig,
  findKeySpec,
  keySpecs,
  loadConfig,
  type PetrelConfig,
  type SslOptionsConfig,
  type WebSocketOptionsConfig,
} from '../../src/config/index.js';
import { LISTENER_BASE } from './expected-listener.js';

const SSL_DEFAULTS: SslOptionsConfig = {
  certfile: '',
  keyfile: '',
  cacertfile: '',
  verify: 'verify_none',
  fail_if_no_peer_cert: false,
  versions: 'tlsv1.3,tlsv1.2',
  ciphers: '',
  reuse_sessions: true,
};

const WS_DEFAULTS: WebSocketOptionsConfig = {
  mqtt_path: '/mqtt',
  fail_if_no_subprotocol: true,
  supported_subprotocols: 'mqtt, mqttv3.1, mqtt-v3, mqtt-v3.1.1, mqtt-v5',
  proxy_address_header: 'x-forwarded-for',
  proxy_port_header: 'x-forwarded-port',
};

const EXPECTED_DEFAULTS: PetrelConfig = {
  node: { name: 'petrel@127.0.0.1', data_dir: './data' },
  log: { level: 'notice', format: 'json' },
  listeners: {
    tcp: { default: { ...LISTENER_BASE, bind: { host: '0.0.0.0', port: 1883 } } },
    ssl: { default: { ...LISTENER_BASE, bind: { host: '0.0.0.0', port: 8883 }, ssl_options: SSL_DEFAULTS } },
    ws: { default: { ...LISTENER_BASE, bind: { host: '0.0.0.0', port: 8083 }, websocket: WS_DEFAULTS } },
    wss: {
      default: { ...LISTENER_BASE, bind: { host: '0.0.0.0', port: 8084 }, ssl_options: SSL_DEFAULTS, websocket: WS_DEFAULTS },
    },
  },
  mqtt: {
    max_packet_size: 1048576,
    max_clientid_len: 65535,
    max_topic_levels: 128,
    max_qos_allowed: 2,
    max_topic_alias: 65535,
    retain_available: true,
    wildcard_subscription: true,
    shared_subscription: true,
    exclusive_subscription: false,
    idle_timeout: 15_000,
    keepalive_multiplier: 1.5,
    max_subscriptions: Infinity,
    upgrade_qos: false,
    max_inflight: 32,
    retry_interval: 30_000,
    max_awaiting_rel: 100,
    await_rel_timeout: 300_000,
    session_expiry_interval: 7_200_000,
    message_expiry_interval: Infinity,
    max_mqueue_len: 1000,
    mqueue_store_qos0: true,
    shared_subscription_strategy: 'round_robin',
    server_keepalive: null,
    ignore_loop_deliver: false,
    response_information: '',
    use_username_as_clientid: false,
  },
  force_shutdown: { enable: true, max_mailbox_size: Infinity, max_heap_size: 32 * 1048576 },
  backpressure: { enable: true, hold_at: 1000, max_hold: 5000 },
  overload_protection: { enable: false, backoff_new_conn: true, max_memory: Infinity, max_event_loop_delay: 1000, check_interval: 1000 },
  retainer: { enable: true, max_retained_messages: 0, max_payload_size: 1048576, msg_expiry_interval: 0 },
  delayed: { enable: true, max_delayed_messages: 0 },
  durable_storage: { mode: 'durable', sync: 'normal' },
  dashboard: { listeners: { http: { enable: true, bind: { host: '0.0.0.0', port: 18083 } } }, default_password: '' },
  api_key: { bootstrap_file: '' },
  ctl: { enable: true, socket: 'petrel.sock' },
  prometheus: { enable_basic_auth: false },
  // No authenticator and no authorization source unless the config names one (EMQX: anonymous
  // access, no_match allow).
  authorization: { no_match: 'allow', deny_action: 'ignore', cache: { enable: true, max_size: 32, ttl: 60_000 } },
  // EMQX 5.8: flapping detection off; 15 disconnects a minute ban for 5 minutes when on.
  flapping_detect: { enable: false, max_count: 15, window_time: 60_000, ban_time: 300_000 },
  sys_topics: {
    sys_msg_interval: 60_000,
    sys_heartbeat_interval: 30_000,
    sys_event_messages: { client_connected: true, client_disconnected: true, client_subscribed: false, client_unsubscribed: false },
  },
};

/** Dotted paths of the leaves of a config object; a bind {host, port} counts as one leaf. */
function leafPaths(node: unknown, prefix = ''): string[] {
  // A bind ({ host, port }) and a map (headers = {}) are one value each.
  if (typeof node !== 'object' || node === null || (prefix !== '' && findKeySpec(prefix) !== undefined)) return [prefix];
  return Object.entries(node).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
}

function lookup(root: unknown, key: string): { found: boolean; value: unknown } {
  let node: unknown = root;
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null || !(part in node)) return { found: false, value: undefined };
    node = (node as Record<string, unknown>)[part];
  }
  return { found: true, value: node };
}

test('defaults resolve to the EMQX values in resolved units', () => {
  assert.deepEqual(defaultConfig(), EXPECTED_DEFAULTS);
  assert.deepEqual(loadConfig({}), EXPECTED_DEFAULTS);
});

/**
 * `authentication.<name>` and `authorization.sources.<name>` have no instance until the config
 * names one; this config names one of each, called default, so every key has a value.
 */
const WITH_AUTH = { authentication: { default: { enable: true } }, authorization: { sources: { default: { enable: true } } } };

/** The http / redis / mysql / postgresql keys authenticators and sources share (EMQX's names and defaults). */
const BACKEND_DEFAULTS = {
  method: 'post', url: '', headers: {}, body: {}, request_timeout: 5000, pool_size: 8,
  server: '', redis_type: 'single', database: '', username: '', password: '', cmd: '', query: '',
};

test('a named authenticator and authorization source get EMQX defaults', () => {
  const cfg = loadConfig({ values: WITH_AUTH });
  assert.deepEqual(cfg.authentication, {
    default: {
      enable: true,
      mechanism: 'password_based',
      backend: 'built_in_database',
      user_id_type: 'username',
      password_hash_algorithm: { name: 'sha256', salt_position: 'prefix', salt_rounds: 10, mac_fun: 'sha256', iterations: 4096, dk_length: 0 },
      bootstrap_file: '',
      bootstrap_type: 'plain',
      ...BACKEND_DEFAULTS,
      use_jwks: false,
      algorithm: 'hmac-based',
      iteration_count: 4096,
      secret: '',
      secret_base64_encoded: false,
      public_key: '',
      endpoint: '',
      refresh_interval: 300_000,
      from: 'password',
      verify_claims: {},
      acl_claim_name: 'acl',
      disconnect_after_expire: true,
    },
  });
  assert.deepEqual(cfg.authorization.sources, { default: { type: 'file', enable: true, path: '', ...BACKEND_DEFAULTS } });
});

test('every schema key appears in a loaded default config', () => {
  const cfg = loadConfig({ values: WITH_AUTH });
  for (const spec of keySpecs()) {
    const key = spec.key.replace('<name>', 'default');
    const { found, value } = lookup(cfg, key);
    assert.ok(found, `${key} is missing from the default config`);
    // Only server_keepalive (disabled) and the rates (infinity) resolve to null; nothing may
    // be undefined.
    assert.notEqual(value, undefined, `${key} is undefined`);
  }
});

test('every leaf of the default config is a schema key', () => {
  const cfg = loadConfig({ values: WITH_AUTH });
  for (const path of leafPaths(cfg)) {
    assert.ok(findKeySpec(path), `${path} is in the config but not in the schema`);
  }
  assert.equal(leafPaths(cfg).length, keySpecs().length);
});

test('the loaded config is deeply frozen', () => {
  const cfg = loadConfig({ set: ['mqtt.max_inflight=10'] });
  assert.ok(Object.isFrozen(cfg));
  assert.ok(Object.isFrozen(cfg.mqtt));
  assert.ok(Object.isFrozen(cfg.listeners.tcp.default.bind));
  assert.throws(() => {
    (cfg.mqtt as { max_inflight: number }).max_inflight = 1;
  }, TypeError);
  assert.equal(cfg.mqtt.max_inflight, 10);
});

test('the schema itself is frozen', () => {
  assert.ok(Object.isFrozen(keySpecs()));
  assert.ok(Object.isFrozen(keySpecs()[0]));
});

test('schema keys are unique, documented in one line, and enums list their values', () => {
  const keys = keySpecs().map((s) => s.key);
  assert.equal(new Set(keys).size, keys.length);
  for (const spec of keySpecs()) {
    assert.ok(spec.doc.length > 10 && !spec.doc.includes('\n'), `${spec.key} needs a one-line doc`);
    if (spec.type === 'enum') assert.ok(spec.values && spec.values.length > 1, spec.key);
  }
});

test('findKeySpec matches wildcards and only whole keys', () => {
  assert.equal(findKeySpec('listeners.tcp.internal.bind')?.key, 'listeners.tcp.<name>.bind');
  assert.equal(findKeySpec('listeners.tcp.<name>.bind')?.key, 'listeners.tcp.<name>.bind');
  assert.equal(findKeySpec('mqtt.max_inflight')?.type, 'integer');
  assert.equal(findKeySpec('mqtt'), undefined);
  assert.equal(findKeySpec('mqtt.max_inflight.x'), undefined);
  assert.equal(findKeySpec('listeners.tcp.bad name.bind'), undefined);
  assert.equal(findKeySpec('listeners.wss.edge.ssl_options.certfile')?.key, 'listeners.wss.<name>.ssl_options.certfile');
  assert.equal(findKeySpec('listeners.ws.edge.websocket.mqtt_path')?.type, 'string');
  // ssl_options only where there is TLS, websocket only where there is WebSocket.
  assert.equal(findKeySpec('listeners.tcp.default.ssl_options.certfile'), undefined);
  assert.equal(findKeySpec('listeners.ws.default.ssl_options.certfile'), undefined);
  assert.equal(findKeySpec('listeners.ssl.default.websocket.mqtt_path'), undefined);
});

test('each listener type has the same common keys, with EMQX default ports', () => {
  const common = ['enable', 'bind', 'max_connections', 'max_conn_rate', 'proxy_protocol', 'proxy_protocol_timeout'];
  const ports: Record<string, number> = { tcp: 1883, ssl: 8883, ws: 8083, wss: 8084 };
  for (const [type, port] of Object.entries(ports)) {
    for (const k of common) assert.ok(findKeySpec(`listeners.${type}.x.${k}`), `listeners.${type}.<name>.${k}`);
    assert.equal(findKeySpec(`listeners.${type}.x.bind`)?.default, `0.0.0.0:${port}`);
  }
});
