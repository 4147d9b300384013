/**
 * Wire constants of MQTT 3.1 (protocol level 3), 3.1.1 (level 4) and 5.0 (level 5):
 * packet types, property identifiers and reason codes, each as a typed table.
 * Pure data; nothing here does I/O.
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

export const PACKET_NAMES: readonly string[] = [
  'reserved', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP',
  'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH',
];

/** MQTT protocol levels: 3 = 3.1 (`MQIsdp`), 4 = 3.1.1, 5 = 5.0. */
export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

/** Largest value a Variable Byte Integer can carry (4 bytes) [MQTT-1.5.5]. */
export const MAX_VARIABLE_BYTE_INTEGER = 268_435_455;
/** Largest possible packet: 1 byte of header + 4 bytes of length + the largest Remaining Length. */
export const MAX_PACKET_SIZE = MAX_VARIABLE_BYTE_INTEGER + 5;

/** MQTT 5 reason codes (section 2.4) with the names used in logs and errors. */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** snake_case names, the form used in log lines (`reason_code_name`). */
export const REASON_CODE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'success'],
  [0x01, 'granted_qos1'],
  [0x02, 'granted_qos2'],
  [0x04, 'disconnect_with_will_message'],
  [0x10, 'no_matching_subscribers'],
  [0x11, 'no_subscription_existed'],
  [0x18, 'continue_authentication'],
  [0x19, 're_authenticate'],
  [0x80, 'unspecified_error'],
  [0x81, 'malformed_packet'],
  [0x82, 'protocol_error'],
  [0x83, 'implementation_specific_error'],
  [0x84, 'unsupported_protocol_version'],
  [0x85, 'client_identifier_not_valid'],
  [0x86, 'bad_username_or_password'],
  [0x87, 'not_authorized'],
  [0x88, 'server_unavailable'],
  [0x89, 'server_busy'],
  [0x8a, 'banned'],
  [0x8b, 'server_shutting_down'],
  [0x8c, 'bad_authentication_method'],
  [0x8d, 'keepalive_timeout'],
  [0x8e, 'session_taken_over'],
  [0x8f, 'topic_filter_invalid'],
  [0x90, 'topic_name_invalid'],
  [0x91, 'packet_identifier_in_use'],
  [0x92, 'packet_identifier_not_found'],
  [0x93, 'receive_maximum_exceeded'],
  [0x94, 'topic_alias_invalid'],
  [0x95, 'packet_too_large'],
  [0x96, 'message_rate_too_high'],
  [0x97, 'quota_exceeded'],
  [0x98, 'administrative_action'],
  [0x99, 'payload_format_invalid'],
  [0x9a, 'retain_not_supported'],
  [0x9b, 'qos_not_supported'],
  [0x9c, 'use_another_server'],
  [0x9d, 'server_moved'],
  [0x9e, 'shared_subscriptions_not_supported'],
  [0x9f, 'connection_rate_exceeded'],
  [0xa0, 'maximum_connect_time'],
  [0xa1, 'subscription_identifiers_not_supported'],
  [0xa2, 'wildcard_subscriptions_not_supported'],
]);

export function reasonCodeName(code: number): string {
  return REASON_CODE_NAMES.get(code) ?? `unknown_0x${code.toString(16).padStart(2, '0')}`;
}

/** Which reason codes each packet may carry in MQTT 5 (sections 3.2.2.2, 3.4.2.1, ... 3.15.2.1). */
export const VALID_REASON_CODES: Readonly<Partial<Record<PacketType, ReadonlySet<number>>>> = {
  [PacketType.CONNACK]: new Set([0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f]),
  [PacketType.PUBACK]: new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  [PacketType.PUBREC]: new Set([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]),
  [PacketType.PUBREL]: new Set([0x00, 0x92]),
  [PacketType.PUBCOMP]: new Set([0x00, 0x92]),
  [PacketType.SUBACK]: new Set([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]),
  [PacketType.UNSUBACK]: new Set([0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]),
  [PacketType.DISCONNECT]: new Set([0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2]),
  [PacketType.AUTH]: new Set([0x00, 0x18, 0x19]),
};

/** MQTT 3.1/3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3). */
export const ConnackReturnCodeV3 = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;

/** MQTT 3.1.1 SUBACK failure return code. */
export const SUBACK_FAILURE_V3 = 0x80;
