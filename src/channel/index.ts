export { Channel, disconnectReasonFor, type ChannelState } from './channel.js';
export { forwardable } from './properties.js';
export type { ChannelIO, ListenerClientSettings, PeerCertificate } from './types.js';
