/** DISCONNECT from the client (MQTT 5 section 3.14). */
import { MqttReasonError, PacketType, ReasonCode, type DisconnectPacket } from '../../codec/index.js';
import type { Channel } from '../channel.js';

export function handleDisconnect(ch: Channel, p: DisconnectPacket): void {
  const requested = p.properties?.sessionExpiryInterval;
  if (requested !== undefined && ch.session !== null) {
    // [MQTT-3.14.2-2] 0 at CONNECT cannot become non-zero at DISCONNECT.
    if (ch.connectSessionExpiry === 0 && requested !== 0) {
      return ch.fail(new MqttReasonError(ReasonCode.ProtocolError, 'session expiry set at DISCONNECT after 0 at CONNECT', PacketType.DISCONNECT));
    }
    const ms = requested === 0xffffffff ? Infinity : requested * 1000;
    ch.session.setExpiry(Math.min(ms, ch.broker.config.mqtt.session_expiry_interval));
  }
  // [MQTT-3.1.2-10] a normal DISCONNECT deletes the will; 0x04 asks for it to be published.
  if (p.reasonCode !== ReasonCode.DisconnectWithWillMessage) ch.will = null;
  ch.io.stopDecoding();
  ch.terminate('normal');
}
