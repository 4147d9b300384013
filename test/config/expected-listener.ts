/** Expected defaults of every listener, shared by the config tests. */
// EMQX 5.8's listener defaults: enabled, unlimited, no PROXY protocol (3s timeout when on).
export const LISTENER_BASE = {
  enable: true,
  max_connections: Infinity,
  max_conn_rate: null,
  proxy_protocol: false,
  proxy_protocol_timeout: 3000,
  // No inbound rate limits by default (EMQX 5.8: infinity).
  messages_rate: null,
  messages_burst: 0,
  bytes_rate: null,
  bytes_burst: 0,
  rate_limit: null,
  total_messages_rate: null,
  total_messages_burst: 0,
  total_bytes_rate: null,
  total_bytes_burst: 0,
  // No topic prefix; the CONNECT's username and client id stand (EMQX: disabled).
  mountpoint: '',
  peer_cert_as_username: 'disabled',
  peer_cert_as_clientid: 'disabled',
  // Authentication runs on every listener (EMQX: enable_authn = true).
  enable_authn: 'true',
} as const;
