/**
 * `peer_cert_as_username` / `peer_cert_as_clientid` (EMQX): a listener may take a client's
 * username or client id from its verified TLS certificate instead of the CONNECT, before
 * authentication, so that what was proven at the handshake is what authentication and the
 * ACL see. Without a certificate (or without the field: a PROXY v2 header carries only the
 * CN) the CONNECT's value stands, as in EMQX.
 */
import { createHash } from 'node:crypto';
import type { PeerCertAs } from '../config/index.js';
import type { ChannelIO, PeerCertificate } from './types.js';

/**
 * One field of the certificate as a string: cn; dn (the subject, `CN=device-1,O=Petrel`);
 * crt (the certificate as PEM text: MQTT names are UTF-8 strings, so EMQX's raw DER cannot
 * be one); pem (the base64 DER, EMQX's value); md5 (hex MD5 of the DER, EMQX's value).
 */
export function certificateField(cert: PeerCertificate, field: PeerCertAs): string | undefined {
  switch (field) {
    case 'cn': return cert.commonName;
    case 'dn': return cert.subject;
    case 'crt': return cert.pem;
    case 'pem': return cert.der?.toString('base64');
    case 'md5': return cert.der === undefined ? undefined : createHash('md5').update(cert.der).digest('hex');
    default: return undefined;
  }
}

/** The username and client id a CONNECT is handled with, after peer_cert_as_*. */
export function certifiedIdentity(
  io: ChannelIO,
  username: string | undefined,
  clientId: string,
): { username: string | undefined; clientId: string } {
  const cert = io.peerCert;
  const settings = io.clientSettings;
  if (cert === undefined || settings === undefined) return { username, clientId };
  return {
    username: certificateField(cert, settings.peerCertAsUsername) ?? username,
    clientId: certificateField(cert, settings.peerCertAsClientid) ?? clientId,
  };
}
