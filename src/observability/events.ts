/**
 * The catalog of log event names. Every log line carries one of these as `event`; the names
 * are stable (scripts and alerting match on them) and are never reused for another meaning.
 * docs/observability.md lists them; a test fails when the two disagree.
 */
export const LogEvent = {
  broker_started: 'broker_started',
  broker_stopped: 'broker_stopped',
  listener_started: 'listener_started',
  listener_stopped: 'listener_stopped',
  listener_bind_failed: 'listener_bind_failed',
  listener_max_connections: 'listener_max_connections',
  listener_conn_rate_limited: 'listener_conn_rate_limited',
  listener_conn_rate_queue_full: 'listener_conn_rate_queue_full',
  listener_rate_limited: 'listener_rate_limited',
  proxy_protocol_error: 'proxy_protocol_error',
  tls_handshake_failed: 'tls_handshake_failed',
  tls_self_signed_certificate: 'tls_self_signed_certificate',
  tls_certificates_reloaded: 'tls_certificates_reloaded',
  tls_certificate_reload_failed: 'tls_certificate_reload_failed',
  ws_upgrade_refused: 'ws_upgrade_refused',
  ws_frame_refused: 'ws_frame_refused',
  client_connected: 'client_connected',
  client_connack_refused: 'client_connack_refused',
  client_disconnected: 'client_disconnected',
  frame_error: 'frame_error',
  protocol_error: 'protocol_error',
  session_created: 'session_created',
  session_resumed: 'session_resumed',
  session_discarded: 'session_discarded',
  session_takenover: 'session_takenover',
  session_expired: 'session_expired',
  mqueue_dropped: 'mqueue_dropped',
  force_shutdown: 'force_shutdown',
  alarm_activated: 'alarm_activated',
  alarm_deactivated: 'alarm_deactivated',
  delivery_dropped_too_large: 'delivery_dropped_too_large',
  message_expired: 'message_expired',
  publish_denied_not_authorized: 'publish_denied_not_authorized',
  subscribe_denied: 'subscribe_denied',
  await_rel_timeout: 'await_rel_timeout',
  will_published: 'will_published',
  delayed_publish_rejected: 'delayed_publish_rejected',
  retained_rejected: 'retained_rejected',
  config_invalid: 'config_invalid',
  hook_failed: 'hook_failed',
  store_restored: 'store_restored',
  store_commit_failed: 'store_commit_failed',
  store_recovered: 'store_recovered',
  api_started: 'api_started',
  api_stopped: 'api_stopped',
  api_keys_loaded: 'api_keys_loaded',
  dashboard_admin_password_generated: 'dashboard_admin_password_generated',
  api_login_failed: 'api_login_failed',
  api_login_rate_limited: 'api_login_rate_limited',
  api_internal_error: 'api_internal_error',
} as const;
export type LogEventName = keyof typeof LogEvent;

/**
 * Disconnect reasons (design.md "Stable interfaces"): the `reason` of client_disconnected
 * lines and the keys of per-listener shutdown counts.
 */
export const DisconnectReason = {
  normal: 'normal',
  tcp_closed: 'tcp_closed',
  keepalive_timeout: 'keepalive_timeout',
  idle_timeout: 'idle_timeout',
  takenover: 'takenover',
  discarded: 'discarded',
  kicked: 'kicked',
  frame_error: 'frame_error',
  not_authorized: 'not_authorized',
  banned: 'banned',
  protocol_error: 'protocol_error',
  packet_too_large: 'packet_too_large',
  mqueue_overflow_shutdown: 'mqueue_overflow_shutdown',
  server_busy: 'server_busy',
  server_shutdown: 'server_shutdown',
} as const;
export type DisconnectReason = keyof typeof DisconnectReason;
