export { Channel, disconnectReasonFor, forwardable, type ChannelState } from './channel.js';
export type { ChannelIO } from './types.js';
