/**
 * TCP listeners (`listeners.tcp.<name>`): MQTT straight on the socket. Everything shared with
 * the other types (limits, PROXY protocol, counters) is in listener.ts.
 */
import type net from 'node:net';
import type { TcpListenerConfig } from '../config/index.js';
import type { ProxyHeader } from './proxy-protocol.js';
import { Listener, proxiedCertificate, type ListenerDeps, type PeerAddress } from './listener.js';

export class TcpListener extends Listener {
  constructor(name: string, config: TcpListenerConfig, deps: ListenerDeps) {
    super('tcp', name, config, deps);
  }

  protected serve(socket: net.Socket, peer: PeerAddress, proxy: ProxyHeader | undefined): void {
    this.deliver(socket, socket, peer, proxiedCertificate(proxy));
    // Accepted paused; the connection's 'data' listener is attached now, so start reading.
    socket.resume();
  }
}
