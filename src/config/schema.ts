/**
 * The one config schema: every key Petrel reads, with its type, default, limits, one-line doc
 * and whether it may change while the broker runs. The loader validates against it,
 * docs/config.md is generated from it, and the hand-written types in types.ts are tested
 * against it. Add a key here first; nothing else invents keys.
 *
 * Key names and defaults follow EMQX 5.8 where EMQX has the key, so an EMQX user's numbers
 * carry over.
 */
import {
  AUTHN_BACKENDS,
  AUTHN_MECHANISMS,
  AUTHZ_SOURCE_TYPES,
  BOOTSTRAP_TYPES,
  HTTP_METHODS,
  AUTHN_ALGORITHMS,
  ENABLE_AUTHN,
  JWT_FROM,
  REDIS_TYPES,
  PASSWORD_HASH_ALGORITHMS,
  PBKDF2_MAC_FUNS,
  SALT_POSITIONS,
  USER_ID_TYPES,
  LISTENER_TYPES, LOG_FORMATS, LOG_LEVELS, PEER_CERT_AS, SHARED_SUBSCRIPTION_STRATEGIES, TLS_VERIFY, type ListenerType } from './types.js';

export type KeyType =
  | 'string'
  | 'integer'
  | 'float'
  | 'boolean'
  | 'duration'
  | 'bytesize'
  | 'enum'
  | 'bind'
  | 'rate'
  | 'rate_burst'
  /** A table of string values (TOML table or inline table; JSON object text from env / --set). */
  | 'map';

export interface KeySpec {
  /** Dotted key; a `<name>` segment is a wildcard, e.g. `listeners.tcp.<name>.bind`. */
  readonly key: string;
  readonly type: KeyType;
  /**
   * The default as it would be written in a TOML file (`"15s"`, `"1MB"`, `"infinity"`); it is
   * resolved by the same parser as user input, so a bad default fails at start-up.
   */
  readonly default: unknown;
  /** Accepted values of an `enum`. */
  readonly values?: readonly string[];
  /** Inclusive bounds, in resolved units (milliseconds, bytes). */
  readonly min?: number;
  readonly max?: number;
  /** Accepts `"infinity"` (resolved to `Infinity`). */
  readonly infinity?: boolean;
  /** Accepts `"disabled"` (resolved to `null`). */
  readonly disabled?: boolean;
  /** Extra check for a `string` key, with the words shown to the user when it fails. */
  readonly pattern?: { readonly regex: RegExp; readonly hint: string };
  /**
   * For a wildcard key: instances other than `default` must give a value (the default above
   * applies to the `default` instance only). Used by listener binds: two listeners on one port
   * is never what anyone meant.
   */
  readonly requiredForNamed?: boolean;
  /** One line, shown in docs/config.md and in the dashboard. */
  readonly doc: string;
  /** True when a change can take effect without a restart (for new connections/sessions). */
  readonly reloadable: boolean;
}

/** The wildcard segment and what a name in its place may look like (a TOML bare key). */
export const NAME_WILDCARD = '<name>';
export const NAME_SEGMENT = /^[A-Za-z0-9_-]+$/;

const MB = 1024 * 1024;

/**
 * A string key that accepts one of few words, for kinds that have one member so far (an enum
 * needs two): `authentication.<name>.mechanism` is password_based until JWT and SCRAM come.
 */
function oneOf(words: readonly string[]): { readonly regex: RegExp; readonly hint: string } {
  return { regex: new RegExp(`^(${words.join('|')})$`), hint: words.map((w) => `"${w}"`).join(' or ') };
}

/**
 * Keys of the external backends an authenticator or an authorization source may use (http,
 * redis, mysql, postgresql), with EMQX's names. headers and body are maps: TOML tables, as
 * EMQX writes them, or JSON object text.
 */
function authBackendKeys(p: string, what: 'authn' | 'authz'): KeySpec[] {
  const vars = what === 'authn'
    ? '${username} ${clientid} ${password} ${peerhost} ${cert_common_name} ${cert_subject}'
    : '${username} ${clientid} ${peerhost} ${cert_common_name} ${cert_subject}' + ' (http also ${action} ${topic} ${qos} ${retain})';
  return [
    {
      key: `${p}.method`, type: 'enum', values: HTTP_METHODS, default: 'post', reloadable: false,
      doc: 'http: request method; post sends body as JSON (content-type application/json unless headers say otherwise), get sends it as the query string.',
    },
    {
      key: `${p}.url`, type: 'string', default: '', reloadable: false,
      doc: `http: URL of the auth service (http:// or https://); its path and query may hold placeholders ${vars}.`,
    },
    {
      key: `${p}.headers`, type: 'map', default: {}, reloadable: false,
      doc: 'http: request headers, e.g. headers = { "x-api-key" = "k" } (or JSON text {"x-api-key": "k"}); values may hold placeholders.',
    },
    {
      key: `${p}.body`, type: 'map', default: {}, reloadable: false,
      doc: `http: request body fields, e.g. body = { username = "\${username}", password = "\${password}" } (or the same as JSON text); placeholders ${vars}.`,
    },
    {
      key: `${p}.request_timeout`, type: 'duration', default: '5s', reloadable: false, min: 1,
      doc: 'http, redis, mysql, postgresql (and a jwt JWKS endpoint): longest wait for one answer (including getting a pooled connection); then the backend counts as down and the source is passed over.',
    },
    {
      key: `${p}.pool_size`, type: 'integer', default: 8, reloadable: false, min: 1, max: 1024,
      doc: 'http, redis, mysql, postgresql: most connections open to the backend at once; requests beyond wait (within request_timeout).',
    },
    {
      key: `${p}.server`, type: 'string', default: '', reloadable: false, pattern: { regex: /^(|[A-Za-z0-9._-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$/, hint: '"host", "host:port" or "[ipv6]:port"' },
      doc: 'redis, mysql, postgresql: "host:port" of the server; empty: 127.0.0.1 on the default port (6379, 3306, 5432).',
    },
    {
      key: `${p}.redis_type`, type: 'string', pattern: oneOf(REDIS_TYPES), default: 'single', reloadable: false,
      doc: 'redis: deployment type; single (one server) is supported.',
    },
    {
      key: `${p}.database`, type: 'string', default: '', reloadable: false,
      doc: 'mysql, postgresql: database name; redis: database number as a string ("0"); empty: redis 0, otherwise required.',
    },
    {
      key: `${p}.username`, type: 'string', default: '', reloadable: false,
      doc: 'redis (ACL user), mysql, postgresql: account to log in with; empty: none for redis, required otherwise.',
    },
    {
      key: `${p}.password`, type: 'string', default: '', reloadable: false,
      doc: 'redis, mysql, postgresql: password of that account; empty: none.',
    },
    {
      key: `${p}.cmd`, type: 'string', default: '', reloadable: false,
      doc: what === 'authn'
        ? 'redis: the command that reads a user, HMGET or HGET, e.g. "HMGET mqtt_user:${username} password_hash salt is_superuser".'
        : 'redis: the command that reads a client\'s rules, HGETALL or HMGET, e.g. "HGETALL mqtt_acl:${username}" (field = topic, value = action or {"action", "qos", "retain"} JSON; every rule allows).',
    },
    {
      key: `${p}.query`, type: 'string', default: '', reloadable: false,
      doc: what === 'authn'
        ? 'mysql, postgresql: query returning password_hash (or password), salt, is_superuser, e.g. "SELECT password_hash, salt, is_superuser FROM mqtt_user WHERE username = ${username} LIMIT 1"; placeholders are bound as parameters.'
        : 'mysql, postgresql: query returning permission, action, topic (and optionally qos, retain) rows, e.g. "SELECT permission, action, topic FROM mqtt_acl WHERE username = ${username}"; placeholders are bound as parameters.',
    },
  ];
}

/** EMQX's default ports: tcp 1883, ssl 8883, ws 8083, wss 8084. */
const DEFAULT_PORTS: Readonly<Record<ListenerType, number>> = { tcp: 1883, ssl: 8883, ws: 8083, wss: 8084 };

const TRANSPORT_WORDS: Readonly<Record<ListenerType, string>> = {
  tcp: 'MQTT over TCP',
  ssl: 'MQTT over TLS',
  ws: 'MQTT over WebSocket',
  wss: 'MQTT over secure WebSocket',
};

/** TLS protocol versions as EMQX spells them, comma-separated. */
const TLS_VERSIONS = /^\s*tlsv1(\.[123])?\s*(,\s*tlsv1(\.[123])?\s*)*$/;
/** OpenSSL cipher names (TLS 1.2 and TLS 1.3 suites), comma or colon separated. */
const CIPHER_LIST = /^[A-Za-z0-9_+!@=.-]*(\s*[,:]\s*[A-Za-z0-9_+!@=.-]+)*$/;
const SUBPROTOCOL_LIST = /^\s*[A-Za-z0-9._-]+\s*(,\s*[A-Za-z0-9._-]+\s*)*$/;
const HEADER_NAME = /^[A-Za-z0-9-]*$/;
/**
 * A mountpoint: topic characters without wildcards, `${...}` only as EMQX's `${clientid}` or
 * `${username}` (a prefix with + or # would turn every topic into a filter).
 */
const MOUNTPOINT = /^(?:[^+#$]|\$(?!\{)|\$\{(?:clientid|username)\})*$/;

/**
 * The keys of one listener type: what every listener has, then `ssl_options` for ssl/wss and
 * `websocket` for ws/wss, with EMQX's names and defaults (listeners.<type>.default is always
 * there, on EMQX's port).
 */
function listenerKeys(): KeySpec[] {
  const out: KeySpec[] = [];
  for (const type of LISTENER_TYPES) {
    const p = `listeners.${type}.<name>`;
    const what = TRANSPORT_WORDS[type];
    out.push(
      {
        key: `${p}.enable`, type: 'boolean', default: true, reloadable: true,
        doc: `Start this listener (${what}); set false on listeners.${type}.default to run without it.`,
      },
      {
        key: `${p}.bind`, type: 'bind', default: `0.0.0.0:${DEFAULT_PORTS[type]}`, reloadable: false,
        requiredForNamed: true,
        doc: 'Address to listen on: "host:port", "[ipv6]:port" or a port; required for listeners other than default.',
      },
      {
        key: `${p}.max_connections`, type: 'integer', default: 'infinity', reloadable: true,
        min: 1, infinity: true,
        doc: 'Most connections this listener holds at once; further ones are closed as they arrive.',
      },
      {
        key: `${p}.max_conn_rate`, type: 'rate', default: 'infinity', reloadable: true,
        doc: 'Most new connections accepted per period (token bucket, e.g. 1000/s); beyond it new sockets wait, unread.',
      },
      {
        key: `${p}.messages_rate`, type: 'rate', default: 'infinity', reloadable: true,
        doc: 'Most PUBLISH packets each client may send per period (e.g. 1000/s); beyond it its socket is not read until tokens return.',
      },
      {
        key: `${p}.messages_burst`, type: 'integer', default: 0, reloadable: true, min: 0,
        doc: 'Messages a client may send at once on top of one period of messages_rate (bucket size = rate + burst).',
      },
      {
        key: `${p}.bytes_rate`, type: 'rate', default: 'infinity', reloadable: true,
        doc: 'Most bytes each client may send per period (e.g. 1MB/s); beyond it its socket is not read until tokens return.',
      },
      {
        key: `${p}.bytes_burst`, type: 'bytesize', default: 0, reloadable: true, min: 0,
        doc: 'Bytes a client may send at once on top of one period of bytes_rate (bucket size = rate + burst).',
      },
      {
        key: `${p}.rate_limit`, type: 'rate_burst', default: 'infinity', reloadable: true,
        doc: 'Older per-client byte limit (EMQX 3/4): "1024,4096" = 1024 bytes/s, bucket 4096; "100KB,10s"; used when bytes_rate is infinity.',
      },
      {
        key: `${p}.total_messages_rate`, type: 'rate', default: 'infinity', reloadable: true,
        doc: "Most PUBLISH packets all this listener's clients together may send per period (one shared bucket).",
      },
      {
        key: `${p}.total_messages_burst`, type: 'integer', default: 0, reloadable: true, min: 0,
        doc: 'Messages on top of one period of total_messages_rate the shared bucket holds.',
      },
      {
        key: `${p}.total_bytes_rate`, type: 'rate', default: 'infinity', reloadable: true,
        doc: "Most bytes all this listener's clients together may send per period (one shared bucket).",
      },
      {
        key: `${p}.total_bytes_burst`, type: 'bytesize', default: 0, reloadable: true, min: 0,
        doc: 'Bytes on top of one period of total_bytes_rate the shared bucket holds.',
      },
      {
        key: `${p}.proxy_protocol`, type: 'boolean', default: false, reloadable: false,
        doc: 'Expect a PROXY protocol v1 or v2 header (HAProxy, AWS NLB...) and take the client address from it.',
      },
      {
        key: `${p}.proxy_protocol_timeout`, type: 'duration', default: '3s', reloadable: false, min: 1,
        doc: 'How long a new connection may take to send its PROXY header before it is closed.',
      },
      {
        key: `${p}.mountpoint`, type: 'string', default: '', reloadable: false,
        pattern: { regex: MOUNTPOINT, hint: 'a topic prefix without + or #; placeholders ${clientid} and ${username}' },
        doc: "Topic prefix of this listener's clients (\"tenant1/\", \"dev/${clientid}/\"): added to what they publish and subscribe, removed from what they get.",
      },
      {
        key: `${p}.peer_cert_as_username`, type: 'enum', values: PEER_CERT_AS, default: 'disabled', reloadable: false,
        doc: "Username from the verified client certificate: cn, dn (subject), crt (PEM text), pem (base64 DER), md5 (of the DER); tcp/ws: a PROXY v2 header's CN.",
      },
      {
        key: `${p}.peer_cert_as_clientid`, type: 'enum', values: PEER_CERT_AS, default: 'disabled', reloadable: false,
        doc: 'Client id from the verified client certificate (values as peer_cert_as_username); without a certificate the CONNECT\'s stays.',
      },
      {
        key: `${p}.enable_authn`, type: 'enum', values: ENABLE_AUTHN, default: 'true', reloadable: false,
        doc: 'true: run the authentication chain; false: skip it on this listener (with verify_peer and fail_if_no_peer_cert the certificate is the authentication); quick_deny_anonymous: refuse clients without a username at once.',
      },
    );
    if (type === 'ssl' || type === 'wss') {
      const s = `${p}.ssl_options`;
      out.push(
        {
          key: `${s}.certfile`, type: 'string', default: '', reloadable: false,
          doc: 'PEM server certificate (chain); empty: a self-signed one is generated in node.data_dir/certs (with a warning).',
        },
        {
          key: `${s}.keyfile`, type: 'string', default: '', reloadable: false,
          doc: 'PEM private key of certfile (required when certfile is set); files are re-read on SIGHUP / reloadCertificates().',
        },
        {
          key: `${s}.cacertfile`, type: 'string', default: '', reloadable: false,
          doc: 'PEM CA certificates that client certificates are checked against; empty: the system CAs.',
        },
        {
          key: `${s}.verify`, type: 'enum', values: TLS_VERIFY, default: 'verify_none', reloadable: false,
          doc: 'verify_peer asks clients for a certificate and refuses one that does not verify against cacertfile.',
        },
        {
          key: `${s}.fail_if_no_peer_cert`, type: 'boolean', default: false, reloadable: false,
          doc: 'With verify_peer: refuse clients that send no certificate at all.',
        },
        {
          key: `${s}.versions`, type: 'string', default: 'tlsv1.3,tlsv1.2', reloadable: false,
          pattern: { regex: TLS_VERSIONS, hint: 'comma-separated tlsv1.3, tlsv1.2, tlsv1.1, tlsv1' },
          doc: 'TLS versions offered; the lowest and highest named bound the range.',
        },
        {
          key: `${s}.ciphers`, type: 'string', default: '', reloadable: false,
          pattern: { regex: CIPHER_LIST, hint: 'comma-separated OpenSSL cipher names' },
          doc: "OpenSSL cipher suites (TLS 1.2 and 1.3 names), comma-separated; empty: Node's defaults.",
        },
        {
          key: `${s}.reuse_sessions`, type: 'boolean', default: true, reloadable: false,
          doc: 'Allow TLS session resumption (tickets and session ids) so a reconnecting client skips the full handshake.',
        },
      );
    }
    if (type === 'ws' || type === 'wss') {
      const w = `${p}.websocket`;
      out.push(
        {
          key: `${w}.mqtt_path`, type: 'string', default: '/mqtt', reloadable: false,
          pattern: { regex: /^\/\S*$/, hint: 'a URL path starting with /' },
          doc: 'URL path of the WebSocket endpoint; upgrade requests for other paths get 404.',
        },
        {
          key: `${w}.fail_if_no_subprotocol`, type: 'boolean', default: true, reloadable: false,
          doc: 'Refuse (400) a WebSocket upgrade that offers none of supported_subprotocols.',
        },
        {
          key: `${w}.supported_subprotocols`, type: 'string', default: 'mqtt, mqttv3.1, mqtt-v3, mqtt-v3.1.1, mqtt-v5',
          reloadable: false,
          pattern: { regex: SUBPROTOCOL_LIST, hint: 'comma-separated subprotocol names' },
          doc: 'WebSocket subprotocols accepted, comma-separated; the first one the client offers is chosen.',
        },
        {
          key: `${w}.proxy_address_header`, type: 'string', default: 'x-forwarded-for', reloadable: false,
          pattern: { regex: HEADER_NAME, hint: 'an HTTP header name, or empty' },
          doc: 'HTTP header whose first address is taken as the client address; empty: ignore (clients can set it too).',
        },
        {
          key: `${w}.proxy_port_header`, type: 'string', default: 'x-forwarded-port', reloadable: false,
          pattern: { regex: HEADER_NAME, hint: 'an HTTP header name, or empty' },
          doc: 'HTTP header taken as the client port when proxy_address_header is used; empty: ignore.',
        },
      );
    }
  }
  return out;
}

const SCHEMA: readonly KeySpec[] = [
  // node
  {
    key: 'node.name', type: 'string', default: 'petrel@127.0.0.1', reloadable: false,
    pattern: { regex: /^[A-Za-z0-9_.-]+@[A-Za-z0-9_.:-]+$/, hint: 'name@host' },
    doc: 'Node name, name@host; identifies this node in a cluster (the data directory does not depend on it).',
  },
  {
    key: 'node.data_dir', type: 'string', default: './data', reloadable: false,
    pattern: { regex: /\S/, hint: 'a non-empty directory path' },
    doc: 'Directory for the embedded store (sessions, retained messages, users); created if missing.',
  },
  // log
  {
    key: 'log.level', type: 'enum', values: LOG_LEVELS, default: 'notice', reloadable: true,
    doc: 'Lowest level of log lines written.',
  },
  {
    key: 'log.format', type: 'enum', values: LOG_FORMATS, default: 'json', reloadable: true,
    doc: 'json: one JSON object per line with a stable event name; text: for people.',
  },
  // listeners
  ...listenerKeys(),
  // mqtt
  {
    key: 'mqtt.max_packet_size', type: 'bytesize', default: '1MB', reloadable: true,
    min: 2, max: 256 * MB,
    doc: 'Largest MQTT packet accepted, checked from the fixed header before buffering.',
  },
  {
    key: 'mqtt.max_clientid_len', type: 'integer', default: 65535, reloadable: true, min: 23, max: 65535,
    doc: 'Longest client id accepted in CONNECT.',
  },
  {
    key: 'mqtt.max_topic_levels', type: 'integer', default: 128, reloadable: true, min: 1, max: 65535,
    doc: 'Most levels (slash-separated parts) a topic name or filter may have.',
  },
  {
    key: 'mqtt.max_qos_allowed', type: 'integer', default: 2, reloadable: true, min: 0, max: 2,
    doc: 'Highest QoS granted; higher requested QoS is downgraded to it.',
  },
  {
    key: 'mqtt.max_topic_alias', type: 'integer', default: 65535, reloadable: true, min: 0, max: 65535,
    doc: 'Topic Alias Maximum sent to MQTT 5 clients; 0 turns topic aliases off.',
  },
  {
    key: 'mqtt.retain_available', type: 'boolean', default: true, reloadable: true,
    doc: 'Accept retained messages; when false a PUBLISH with retain set is refused.',
  },
  {
    key: 'mqtt.wildcard_subscription', type: 'boolean', default: true, reloadable: true,
    doc: 'Allow subscriptions to filters containing + or #.',
  },
  {
    key: 'mqtt.shared_subscription', type: 'boolean', default: true, reloadable: true,
    doc: 'Allow shared subscriptions ($share/group/filter and $queue/filter).',
  },
  {
    key: 'mqtt.exclusive_subscription', type: 'boolean', default: false, reloadable: true,
    doc: 'Allow exclusive subscriptions ($exclusive/filter): one subscriber per filter.',
  },
  {
    key: 'mqtt.idle_timeout', type: 'duration', default: '15s', reloadable: true, infinity: true,
    doc: 'How long a new connection may wait before sending CONNECT; a bare integer is milliseconds.',
  },
  {
    key: 'mqtt.keepalive_multiplier', type: 'float', default: 1.5, reloadable: true, min: 1,
    doc: 'A client is dropped after keepalive x this factor without a packet (MQTT says 1.5).',
  },
  {
    key: 'mqtt.max_subscriptions', type: 'integer', default: 'infinity', reloadable: true,
    min: 1, infinity: true,
    doc: 'Most subscriptions one client may hold.',
  },
  {
    key: 'mqtt.upgrade_qos', type: 'boolean', default: false, reloadable: true,
    doc: 'Deliver at the subscription QoS even when the message was published at a lower QoS.',
  },
  {
    key: 'mqtt.max_inflight', type: 'integer', default: 32, reloadable: true, min: 1, max: 65535,
    doc: 'Most QoS 1/2 messages sent to one client and not yet acknowledged.',
  },
  {
    key: 'mqtt.retry_interval', type: 'duration', default: '30s', reloadable: true, infinity: true,
    doc: 'Resend an unacknowledged QoS 1/2 message after this long; infinity resends only on reconnect.',
  },
  {
    key: 'mqtt.max_awaiting_rel', type: 'integer', default: 100, reloadable: true, min: 1, infinity: true,
    doc: 'Most incoming QoS 2 messages of one client waiting for PUBREL.',
  },
  {
    key: 'mqtt.await_rel_timeout', type: 'duration', default: '300s', reloadable: true,
    doc: 'An incoming QoS 2 message whose PUBREL has not come after this long is dropped.',
  },
  {
    key: 'mqtt.session_expiry_interval', type: 'duration', default: '2h', reloadable: true,
    doc: 'Longest a disconnected session is kept (an MQTT 5 client may ask for less).',
  },
  {
    key: 'mqtt.message_expiry_interval', type: 'duration', default: 'infinity', reloadable: true,
    infinity: true,
    doc: 'Queued messages without their own expiry expire after this long; infinity keeps them.',
  },
  {
    key: 'mqtt.max_mqueue_len', type: 'integer', default: 1000, reloadable: true, min: 1, infinity: true,
    doc: 'Most messages queued for one session beyond its inflight window; the oldest is dropped first.',
  },
  {
    key: 'mqtt.mqueue_store_qos0', type: 'boolean', default: true, reloadable: true,
    doc: 'Queue QoS 0 messages for disconnected persistent sessions too.',
  },
  {
    key: 'mqtt.shared_subscription_strategy', type: 'enum', values: SHARED_SUBSCRIPTION_STRATEGIES,
    default: 'round_robin', reloadable: true,
    doc: 'How a message to a shared subscription picks one member of the group.',
  },
  {
    key: 'mqtt.server_keepalive', type: 'duration', default: 'disabled', reloadable: true,
    disabled: true, min: 1000, max: 65535 * 1000,
    doc: "Keepalive (whole seconds) the server imposes on MQTT 5 clients, or disabled to use the client's own.",
  },
  {
    key: 'mqtt.ignore_loop_deliver', type: 'boolean', default: false, reloadable: true,
    doc: "Do not deliver a client's messages back to its own subscriptions (MQTT 3 no-local).",
  },
  {
    key: 'mqtt.response_information', type: 'string', default: '', reloadable: true,
    doc: 'Response Information sent in CONNACK to MQTT 5 clients that ask for it; empty sends none.',
  },
  {
    key: 'mqtt.use_username_as_clientid', type: 'boolean', default: false, reloadable: true,
    doc: 'Replace the client id with the username after authentication.',
  },
  // force_shutdown
  {
    key: 'force_shutdown.enable', type: 'boolean', default: true, reloadable: true,
    doc: 'Close connections that hold too much (max_mailbox_size, max_heap_size) with reason mqueue_overflow_shutdown.',
  },
  {
    key: 'force_shutdown.max_mailbox_size', type: 'integer', default: 'infinity', reloadable: true, min: 1, infinity: true,
    doc: 'Close a connected client whose mqueue grows more than this above its lowest length since connecting (not EMQX\'s 1000: see above).',
  },
  {
    key: 'force_shutdown.max_heap_size', type: 'bytesize', default: '32MB', reloadable: true,
    min: 1024, infinity: true,
    doc: 'Close a connection with more than this many outgoing bytes waiting (queued and in the socket buffer).',
  },
  // backpressure (Petrel's own: EMQX drops for a slow subscriber; Petrel first slows its publishers)
  {
    key: 'backpressure.enable', type: 'boolean', default: true, reloadable: false,
    doc: 'Hold publishers (stop reading their sockets) while an online subscriber they feed has backpressure.hold_at messages queued.',
  },
  {
    key: 'backpressure.hold_at', type: 'integer', default: 1000, reloadable: false, min: 1, max: 1_000_000,
    doc: 'Online mqueue length at which the publishers feeding it are held (at most half of mqtt.max_mqueue_len); they resume at half of it.',
  },
  {
    key: 'backpressure.max_hold', type: 'duration', default: '5s', reloadable: false, min: 1,
    doc: 'Longest a subscriber holds publishers at a time; past it the subscriber is stalled and its mqueue drops oldest when full.',
  },
  // overload_protection
  {
    key: 'overload_protection.enable', type: 'boolean', default: false, reloadable: true,
    doc: 'Watch process memory and event-loop delay; above a threshold raise the overload alarm.',
  },
  {
    key: 'overload_protection.backoff_new_conn', type: 'boolean', default: true, reloadable: true,
    doc: 'While the alarm is raised, refuse new connections: CONNACK 0x89 Server Busy (MQTT 5), 0x03 (3.1.1).',
  },
  {
    key: 'overload_protection.max_memory', type: 'bytesize', default: 'infinity', reloadable: true,
    min: 1, infinity: true,
    doc: 'Resident memory (RSS) of the process above which it is overloaded; set it below the container limit.',
  },
  {
    key: 'overload_protection.max_event_loop_delay', type: 'duration', default: '1s', reloadable: true,
    min: 1, infinity: true,
    doc: 'Event-loop delay (99th percentile over check_interval) above which the process is overloaded.',
  },
  {
    key: 'overload_protection.check_interval', type: 'duration', default: '1s', reloadable: true,
    min: 250, max: 3_600_000,
    doc: 'How often memory and event-loop delay are sampled; the alarm clears at the first check below both.',
  },
  // retainer
  {
    key: 'retainer.enable', type: 'boolean', default: true, reloadable: true,
    doc: 'Store retained messages and deliver them on subscribe.',
  },
  {
    key: 'retainer.max_retained_messages', type: 'integer', default: 0, reloadable: true, min: 0,
    doc: 'Most retained messages stored; 0 = unlimited.',
  },
  {
    key: 'retainer.max_payload_size', type: 'bytesize', default: '1MB', reloadable: true,
    min: 0, max: 256 * MB,
    doc: 'Retained messages with a larger payload are not stored.',
  },
  {
    key: 'retainer.msg_expiry_interval', type: 'duration', default: '0s', reloadable: true,
    doc: 'Retained messages without their own expiry expire after this long; 0s = never.',
  },
  // delayed
  {
    key: 'delayed.enable', type: 'boolean', default: true, reloadable: true,
    doc: 'Handle delayed publish ($delayed/<seconds>/topic).',
  },
  {
    key: 'delayed.max_delayed_messages', type: 'integer', default: 0, reloadable: true, min: 0,
    doc: 'Most delayed messages held at once; 0 = unlimited.',
  },
  // durable_storage
  {
    key: 'durable_storage.mode', type: 'enum', values: ['durable', 'memory'], default: 'durable', reloadable: false,
    doc: 'durable: sessions, queued QoS 1/2 messages, retained messages, wills and delayed messages are kept in SQLite under node.data_dir and a QoS 1/2 PUBLISH is acknowledged only once committed; memory: nothing on disk.',
  },
  {
    key: 'durable_storage.sync', type: 'enum', values: ['normal', 'full'], default: 'normal', reloadable: false,
    doc: 'normal: a commit survives a crash of the process; full: it also survives a power loss (fsync per commit, slower).',
  },
  // authentication (an ordered chain of authenticators, EMQX's `authentication`)
  {
    key: 'authentication.<name>.enable', type: 'boolean', default: true, reloadable: false,
    doc: 'Use this authenticator; the chain is the authenticators in the order their names first appear in the config. None enabled: every client may connect (as EMQX).',
  },
  {
    key: 'authentication.<name>.mechanism', type: 'string', pattern: oneOf(AUTHN_MECHANISMS), default: 'password_based', reloadable: false,
    doc: 'How clients prove who they are: password_based (username/client id and password from CONNECT), jwt (a signed token in the password or username) or scram (MQTT 5 enhanced authentication, SCRAM-SHA-256/512, backend built_in_database).',
  },
  {
    key: 'authentication.<name>.backend', type: 'string', pattern: oneOf(AUTHN_BACKENDS), default: 'built_in_database', reloadable: false,
    doc: 'password_based: where users are looked up: built_in_database (users kept by the broker, seeded from bootstrap_file, managed with petrel.auth.users), http, redis, mysql or postgresql.',
  },
  {
    key: 'authentication.<name>.user_id_type', type: 'enum', values: USER_ID_TYPES, default: 'username', reloadable: false,
    doc: 'Which CONNECT field is the user_id looked up: username or clientid. A client whose user_id is unknown passes to the next authenticator.',
  },
  {
    key: 'authentication.<name>.password_hash_algorithm.name', type: 'enum', values: PASSWORD_HASH_ALGORITHMS, default: 'sha256', reloadable: false,
    doc: 'How stored passwords are hashed (EMQX\'s options, so exported user tables verify unchanged).',
  },
  {
    key: 'authentication.<name>.password_hash_algorithm.salt_position', type: 'enum', values: SALT_POSITIONS, default: 'prefix', reloadable: false,
    doc: 'plain/md5/sha/sha256/sha512: hash(salt + password) with prefix, hash(password + salt) with suffix, no salt with disable.',
  },
  {
    key: 'authentication.<name>.password_hash_algorithm.salt_rounds', type: 'integer', default: 10, reloadable: false, min: 4, max: 31,
    doc: 'bcrypt: the cost factor of newly hashed passwords (stored hashes carry their own).',
  },
  {
    key: 'authentication.<name>.password_hash_algorithm.mac_fun', type: 'enum', values: PBKDF2_MAC_FUNS, default: 'sha256', reloadable: false,
    doc: 'pbkdf2: the HMAC hash function.',
  },
  {
    key: 'authentication.<name>.password_hash_algorithm.iterations', type: 'integer', default: 4096, reloadable: false, min: 1, max: 100_000_000,
    doc: 'pbkdf2: the iteration count.',
  },
  {
    key: 'authentication.<name>.password_hash_algorithm.dk_length', type: 'integer', default: 0, reloadable: false, min: 0, max: 1024,
    doc: 'pbkdf2: derived key length in bytes; 0 = the output size of mac_fun.',
  },
  {
    key: 'authentication.<name>.bootstrap_file', type: 'string', default: '', reloadable: false,
    doc: 'built_in_database: users read at start from this CSV or JSON file (EMQX\'s import format); users already present are kept. Empty: none.',
  },
  {
    key: 'authentication.<name>.bootstrap_type', type: 'enum', values: BOOTSTRAP_TYPES, default: 'plain', reloadable: false,
    doc: 'plain: the file has user_id,password,is_superuser (hashed at start); hash: user_id,password_hash,salt,is_superuser.',
  },
  ...authBackendKeys('authentication.<name>', 'authn'),
  {
    key: 'authentication.<name>.use_jwks', type: 'boolean', default: false, reloadable: false,
    doc: 'jwt: take the verification keys from a JWKS endpoint (RSA/EC public keys) instead of secret or public_key.',
  },
  {
    key: 'authentication.<name>.algorithm', type: 'enum', values: AUTHN_ALGORITHMS, default: 'hmac-based', reloadable: false,
    doc: 'jwt without JWKS: hmac-based (HS256/384/512 with secret) or public-key (RS*/PS*/ES* with public_key); scram: sha256 (the default stands for it) or sha512.',
  },
  {
    key: 'authentication.<name>.iteration_count', type: 'integer', default: 4096, reloadable: false, min: 1, max: 10_000_000,
    doc: 'scram: PBKDF2 iterations used when a user is added or its password changed (each user keeps the count it was made with).',
  },
  {
    key: 'authentication.<name>.secret', type: 'string', default: '', reloadable: false,
    doc: 'jwt, hmac-based: the shared secret.',
  },
  {
    key: 'authentication.<name>.secret_base64_encoded', type: 'boolean', default: false, reloadable: false,
    doc: 'jwt, hmac-based: the secret is given base64-encoded.',
  },
  {
    key: 'authentication.<name>.public_key', type: 'string', default: '', reloadable: false,
    doc: 'jwt, public-key: the PEM public key (SPKI "BEGIN PUBLIC KEY" or a certificate), or the path of a file holding it.',
  },
  {
    key: 'authentication.<name>.endpoint', type: 'string', default: '', reloadable: false,
    doc: 'jwt with use_jwks: URL of the JWKS document ({"keys": [...]}).',
  },
  {
    key: 'authentication.<name>.refresh_interval', type: 'duration', default: '300s', reloadable: false, min: 1000,
    doc: 'jwt with use_jwks: how often the JWKS is fetched again (also fetched, at most once a second, when a token names an unknown kid).',
  },
  {
    key: 'authentication.<name>.from', type: 'enum', values: JWT_FROM, default: 'password', reloadable: false,
    doc: 'jwt: which CONNECT field carries the token.',
  },
  {
    key: 'authentication.<name>.verify_claims', type: 'map', default: {}, reloadable: false,
    doc: 'jwt: claims the token must carry, e.g. verify_claims = { clientid = "${clientid}", username = "${username}" } (or the same as JSON text); exp and nbf are always checked when present.',
  },
  {
    key: 'authentication.<name>.acl_claim_name', type: 'string', default: 'acl', reloadable: false,
    doc: 'jwt: claim holding the client\'s own authorization rules (checked before authorization.sources).',
  },
  {
    key: 'authentication.<name>.disconnect_after_expire', type: 'boolean', default: true, reloadable: false,
    doc: 'jwt: disconnect a client when its token\'s exp passes (MQTT 5 DISCONNECT 0x87, the will published); false: the connection outlives the token.',
  },
  // authorization
  {
    key: 'authorization.no_match', type: 'enum', values: ['allow', 'deny'], default: 'allow', reloadable: false,
    doc: 'Decision when no source has a rule for the client, action and topic; set deny in production.',
  },
  {
    key: 'authorization.deny_action', type: 'enum', values: ['ignore', 'disconnect'], default: 'ignore', reloadable: false,
    doc: 'What a denied PUBLISH does: ignore (MQTT 5 PUBACK/PUBREC 0x87, QoS 0 dropped) or disconnect the client.',
  },
  {
    key: 'authorization.cache.enable', type: 'boolean', default: true, reloadable: false,
    doc: 'Remember each client\'s decisions (per action and topic) so rules are not evaluated per message; dropped at disconnect and when rules change.',
  },
  {
    key: 'authorization.cache.max_size', type: 'integer', default: 32, reloadable: false, min: 1, max: 1_048_576,
    doc: 'Most decisions remembered per client; the oldest is forgotten first.',
  },
  {
    key: 'authorization.cache.ttl', type: 'duration', default: '1m', reloadable: false, min: 1,
    doc: 'How long a remembered decision is used.',
  },
  {
    key: 'authorization.sources.<name>.type', type: 'string', pattern: oneOf(AUTHZ_SOURCE_TYPES), default: 'file', reloadable: false,
    doc: 'Kind of rule source; sources are checked in the order their names first appear, the first matching rule decides. file: EMQX\'s acl.conf; built_in_database: rules per client id, username and for all kept by the broker (petrel.auth.rules); redis, mysql, postgresql: a client\'s rows, fetched once per connection; http: a request per action and topic (cached).',
  },
  {
    key: 'authorization.sources.<name>.enable', type: 'boolean', default: true, reloadable: false,
    doc: 'Check this source.',
  },
  {
    key: 'authorization.sources.<name>.path', type: 'string', default: '', reloadable: false,
    doc: 'file: path of the acl.conf (EMQX 5.x or 4.x syntax), read at start; empty: the default acl.conf EMQX ships.',
  },
  ...authBackendKeys('authorization.sources.<name>', 'authz'),
  // flapping_detect
  {
    key: 'flapping_detect.enable', type: 'boolean', default: false, reloadable: false,
    doc: 'Ban a client id that disconnects more than max_count times within window_time, for ban_time (a banned entry by flapping_detector).',
  },
  {
    key: 'flapping_detect.max_count', type: 'integer', default: 15, reloadable: false, min: 1,
    doc: 'Disconnects allowed within window_time; one more bans the client id.',
  },
  {
    key: 'flapping_detect.window_time', type: 'duration', default: '1m', reloadable: false, min: 1,
    doc: 'The window in which disconnects of one client id are counted.',
  },
  {
    key: 'flapping_detect.ban_time', type: 'duration', default: '5m', reloadable: false, min: 1,
    doc: 'How long a flapping client id stays banned.',
  },
  // dashboard (REST API)
  {
    key: 'dashboard.listeners.http.enable', type: 'boolean', default: true, reloadable: false,
    doc: 'Serve the REST API (/api/v5, /status, /api-docs) over HTTP.',
  },
  {
    key: 'dashboard.listeners.http.bind', type: 'bind', default: '0.0.0.0:18083', reloadable: false,
    doc: 'Address of the REST API: "host:port", "[ipv6]:port" or a port.',
  },
  {
    key: 'dashboard.default_password', type: 'string', default: '', reloadable: false,
    doc: 'Password of the dashboard user admin; empty: one is generated on first start and written to node.data_dir/dashboard-admin-password (owner-only).',
  },
  // sys_topics ($SYS)
  {
    key: 'sys_topics.sys_msg_interval', type: 'duration', default: '1m', reloadable: false, disabled: true, min: 1000,
    doc: 'How often $SYS/brokers/<node>/version, sysdescr, stats/* and metrics/* are published (also at start); "disabled": never.',
  },
  {
    key: 'sys_topics.sys_heartbeat_interval', type: 'duration', default: '30s', reloadable: false, disabled: true, min: 1000,
    doc: 'How often $SYS/brokers/<node>/uptime and datetime are published (also at start); "disabled": never.',
  },
  {
    key: 'sys_topics.sys_event_messages.client_connected', type: 'boolean', default: true, reloadable: false,
    doc: 'Publish $SYS/brokers/<node>/clients/<clientid>/connected (JSON) when a client connects.',
  },
  {
    key: 'sys_topics.sys_event_messages.client_disconnected', type: 'boolean', default: true, reloadable: false,
    doc: 'Publish $SYS/brokers/<node>/clients/<clientid>/disconnected (JSON, with the reason) when a client disconnects.',
  },
  {
    key: 'sys_topics.sys_event_messages.client_subscribed', type: 'boolean', default: false, reloadable: false,
    doc: 'Publish $SYS/brokers/<node>/clients/<clientid>/subscribed (JSON) for each subscription a client makes.',
  },
  {
    key: 'sys_topics.sys_event_messages.client_unsubscribed', type: 'boolean', default: false, reloadable: false,
    doc: 'Publish $SYS/brokers/<node>/clients/<clientid>/unsubscribed (JSON) for each subscription a client removes.',
  },
  // api_key
  {
    key: 'api_key.bootstrap_file', type: 'string', default: '', reloadable: false,
    doc: 'File of API keys read at start, one "key:secret:role" per line (role administrator or viewer; default administrator).',
  },
  // prometheus
  {
    key: 'prometheus.enable_basic_auth', type: 'boolean', default: false, reloadable: false,
    doc: 'Ask credentials for GET /api/v5/prometheus/stats (EMQX: off, so scrapers need no key).',
  },
  // ctl (petrel ctl's local socket)
  {
    key: 'ctl.enable', type: 'boolean', default: true, reloadable: false,
    doc: 'Serve petrel ctl on an owner-only Unix socket (no network exposure, no credentials).',
  },
  {
    key: 'ctl.socket', type: 'string', default: 'petrel.sock', reloadable: false,
    doc: 'Path of the petrel ctl socket; a relative path is inside node.data_dir.',
  },
];

// Frozen so no caller can change the source of truth at run time.
for (const spec of SCHEMA) Object.freeze(spec);
Object.freeze(SCHEMA);

const SPLIT = SCHEMA.map((spec) => ({ spec, parts: spec.key.split('.') }));

/** Every key spec, in document order. */
export function keySpecs(): readonly KeySpec[] {
  return SCHEMA;
}

/**
 * The spec of a concrete key, matching `<name>` wildcards: `listeners.tcp.internal.bind` finds
 * `listeners.tcp.<name>.bind`. A schema pattern itself (`listeners.tcp.<name>.bind`) also matches.
 */
export function findKeySpec(key: string): KeySpec | undefined {
  const parts = key.split('.');
  for (const { spec, parts: want } of SPLIT) {
    if (want.length !== parts.length) continue;
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      ok = want[i] === NAME_WILDCARD
        ? parts[i] === NAME_WILDCARD || NAME_SEGMENT.test(parts[i])
        : want[i] === parts[i];
    }
    if (ok) return spec;
  }
  return undefined;
}

/** True when `path` is a proper prefix of some key (a table a TOML file may open). */
export function isKeyPrefix(path: string): boolean {
  const parts = path.split('.');
  return SPLIT.some(({ parts: want }) =>
    want.length > parts.length &&
    parts.every((p, i) => (want[i] === NAME_WILDCARD ? NAME_SEGMENT.test(p) : want[i] === p)),
  );
}

/** The schema key with `<name>` replaced, for messages and the drift test. */
export function concreteKey(spec: KeySpec, name: string): string {
  return spec.key.split(NAME_WILDCARD).join(name);
}
