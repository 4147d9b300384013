export { Channel, disconnectReasonFor, type ChannelState } from './channel.js';
export { forwardable } from './properties.js';
export type { ChannelIO } from './types.js';
