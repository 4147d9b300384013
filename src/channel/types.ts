import type { PeerCertAs } from '../config/index.js';
import type { PacketTracer } from '../observability/index.js';

/**
 * A client certificate the transport verified: the TLS handshake's (all fields), or only the CN
 * that a PROXY protocol v2 header reports for a load balancer that terminated TLS.
 */
export interface PeerCertificate {
  readonly commonName?: string;
  /** Subject DN, EMQX style: `CN=client1,O=Petrel`. */
  readonly subject?: string;
  readonly pem?: string;
  readonly der?: Buffer;
}

/** A listener's settings for its clients; one object per listener, shared by its connections. */
export interface ListenerClientSettings {
  /** `mountpoint` as configured (placeholders unresolved); "" for none. */
  readonly mountpoint: string;
  readonly peerCertAsUsername: PeerCertAs;
  readonly peerCertAsClientid: PeerCertAs;
}

/**
 * What a channel needs from its connection. The channel never touches a socket: it gets these
 * calls, so it is tested in memory with a fake (test/channel) and works over any Duplex.
 */
export interface ChannelIO {
  /**
   * Queues bytes for the connection's batched write (flushed once per event-loop turn).
   * `early`: the bytes are a QoS 0 or 1 PUBLISH, which acknowledges nothing, so they may leave
   * before the turn's store commit (connection/flush.ts); anything else waits for it.
   */
  send(bytes: Buffer, early?: boolean): void;
  /**
   * Optional fast paths (the connection has them; a fake may not, and then the channel builds
   * the Buffer and calls `send`). `sendAck` queues the 4-byte PUBACK/PUBREC/PUBREL/PUBCOMP
   * `first, 2, id`; `sendWithPacketId` queues a copy of a shared PUBLISH template with the
   * packet id at `packetIdOffset` and DUP patched in. The template must stay unchanged.
   */
  sendAck?(first: number, packetId: number): void;
  sendWithPacketId?(template: Buffer, packetIdOffset: number, packetId: number, dup: boolean, early?: boolean): void;
  /** False while outgoing bytes are above the connection's high watermark. */
  readonly writable: boolean;
  /** Flushes what is queued, then closes the socket. */
  close(): void;
  /** Keepalive timeout in ms (0 = none); reset by every received byte. */
  setKeepalive(timeoutMs: number): void;
  /** Stops / resumes reading from the socket (CONNECT authentication, rate limits). */
  pauseReading(): void;
  resumeReading(): void;
  /**
   * Stops / resumes reading for publisher backpressure (a bit of its own, so an auth or rate
   * pause ending does not end it). Absent on fakes: they are never held.
   */
  holdReading?(on: boolean): void;
  /** Stops decoding the rest of the current input (after a fatal protocol error). */
  stopDecoding(): void;
  /** Adjusts the decoder's protocol level (set from CONNECT). */
  readonly peerHost: string;
  readonly peerPort: number;
  readonly listener: string;
  /** Counts a closed connection by reason on its listener. */
  countShutdown(reason: string): void;
  /** Starts or stops tracing the packets of this connection (absent: not traceable). */
  setTracer?(tracer: PacketTracer | null): void;
  /** True while overload protection refuses new connections (absent: never). */
  readonly overloaded?: boolean;
  /** The verified client certificate (absent: none) and the listener's settings (absent: none). */
  readonly peerCert?: PeerCertificate;
  readonly clientSettings?: ListenerClientSettings;
}
