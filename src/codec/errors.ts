import { PACKET_NAMES, reasonCodeName } from './constants.js';

/** Longest hex excerpt of offending bytes carried by an error (for log lines). */
export const HEX_EXCERPT_MAX_BYTES = 64;

/**
 * A protocol violation found while decoding or handling a packet. It carries the MQTT 5 reason
 * code the violation maps to; the channel turns it into CONNACK / DISCONNECT (or a close on
 * MQTT 3.x). The decoder never lets any other exception escape.
 */
export class MqttReasonError extends Error {
  override readonly name = 'MqttReasonError';
  /** snake_case name of `reasonCode`, e.g. `malformed_packet`. */
  readonly reasonName: string;
  /** Hex of (at most 64 of) the offending bytes, from the packet's first byte; set by the decoder. */
  hex = '';
  /**
   * Protocol level the error belongs to, when known: a CONNECT that fails after its protocol
   * level was read carries it, so the channel can answer with the right CONNACK form.
   */
  protocolVersion = 0;
  constructor(
    readonly reasonCode: number,
    /** Short human reason, e.g. `remaining length longer than 4 bytes`. */
    readonly reason: string,
    /** Packet type the error was found in, 0 when not known. */
    readonly packetType: number = 0,
  ) {
    super(
      `${reasonCodeName(reasonCode)} (0x${reasonCode.toString(16).padStart(2, '0')})` +
        (packetType ? ` in ${PACKET_NAMES[packetType]}` : '') +
        `: ${reason}`,
    );
    this.reasonName = reasonCodeName(reasonCode);
  }
}

export function hexExcerpt(buf: Buffer, start: number, end: number): string {
  const stop = Math.min(end, start + HEX_EXCERPT_MAX_BYTES);
  return buf.toString('hex', start, Math.max(start, stop));
}
