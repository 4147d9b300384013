/** The codec room's public surface. Pure: no I/O, no logger, no config reads. */
export * from './constants.js';
export * from './types.js';
export { MqttReasonError, HEX_EXCERPT_MAX_BYTES, hexExcerpt } from './errors.js';
export { Decoder, decodeAll, type DecoderOptions, type PacketSink } from './decoder.js';
export { encode, encodePublish, encodePublishTemplate, withPacketId, type PublishTemplate } from './encoder.js';
export { PROPERTY_SPECS, propertyAllowed, propertiesSize, WILL_PROPERTIES } from './properties.js';
export { topicNameError, topicFilterError, hasWildcard } from './topic-syntax.js';
export { publishFrameHead } from './parse.js';
