/**
 * Public facade of the transport room: listeners of four types producing a Duplex and the
 * client's address for each connection, PROXY protocol, the limiters (connection rate, inbound
 * message and byte rates), force_shutdown and overload protection, and certificate helpers.
 */
import type { ListenersConfig } from '../config/index.js';
import type { Listener, ListenerDeps } from './listener.js';
import { TcpListener } from './tcp.js';
import { SslListener } from './tls.js';
import { WsListener } from './ws.js';

export {
  Listener,
  ListenerError,
  WAIT_LIMIT,
  proxiedCertificate,
  type AcceptedConnection,
  type ListenerContext,
  type CertificateReload,
  type ListenerDeps,
  type ListenerLimits,
  type ListenerStats,
  type PeerAddress,
} from './listener.js';
export { TcpListener } from './tcp.js';
export { SslListener, TlsTerminator, verifiedPeerCertificate, versionRange, type CertificateSource } from './tls.js';
export { WsListener, WsStream } from './ws.js';
export { TokenBucket } from './rate.js';
export {
  ClientFlow,
  ListenerFlow,
  FLOW_KEYS,
  MIN_FILL_MS,
  bucketSpec,
  flowLimits,
  rateText,
  type BucketSpec,
  type FlowKind,
  type FlowLimits,
  type FlowSettings,
  type Throttled,
} from './flow.js';
export { ForceShutdown, SWEEP_MS, type ShutdownCheck } from './force-shutdown.js';
export { OverloadMonitor, OVERLOAD_ALARM, type Alarm, type OverloadSample } from './overload.js';
export {
  parseProxyHeader,
  readProxyHeader,
  ProxyProtocolError,
  V2_SIGNATURE,
  type ProxyHeader,
  type ProxyParse,
  type ProxySslInfo,
} from './proxy-protocol.js';
export {
  createCertificate,
  ensureSelfSigned,
  SELF_SIGNED_CERT,
  SELF_SIGNED_KEY,
  type CertificateOptions,
  type IssuedCertificate,
  type SelfSigned,
} from './certs.js';

/** Every enabled listener of the config, tcp first, then ssl, ws, wss (each in config order). */
export function createListeners(config: ListenersConfig, deps: ListenerDeps): Listener[] {
  const out: Listener[] = [];
  for (const [name, cfg] of Object.entries(config.tcp)) if (cfg.enable) out.push(new TcpListener(name, cfg, deps));
  for (const [name, cfg] of Object.entries(config.ssl)) if (cfg.enable) out.push(new SslListener(name, cfg, deps));
  for (const [name, cfg] of Object.entries(config.ws)) if (cfg.enable) out.push(new WsListener('ws', name, cfg, deps));
  for (const [name, cfg] of Object.entries(config.wss)) if (cfg.enable) out.push(new WsListener('wss', name, cfg, deps));
  return out;
}
