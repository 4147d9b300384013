/**
 * The `jwt` authenticator (EMQX emqx_authn_jwt), on `jose`. The token comes from the CONNECT
 * password or username (`from`); the key is an HMAC secret, a PEM public key, or the keys of
 * a JWKS endpoint refreshed every `refresh_interval` (and on an unknown `kid`).
 *
 * Answers, as EMQX 5:
 *   - no token: ignore; a token that does not parse or whose signature no key verifies:
 *     ignore (another authenticator may know the client);
 *   - `exp` passed, `nbf` ahead, a `verify_claims` claim missing or different: deny 0x86;
 *   - the JWKS endpoint down or slow: ignore, reported as a backend failure;
 *   - otherwise allow; `is_superuser` from the claims; the `acl_claim_name` claim (a list of
 *     {permission, action, topic, qos, retain} or EMQX's older {"pub": [...], "sub": [...],
 *     "all": [...]} allow lists) becomes the client's own rules, checked before the sources
 *     until the token's `exp`;
 *   - with `disconnect_after_expire` (default, as EMQX) a token with `exp` makes the result
 *     carry `expiresAt`, and the channel closes the connection then.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthenticatorConfig } from '../config/index.js';
import type { ClientInfo } from '../hooks/index.js';
import { RawRuleError, aclFieldRules, type AclRule } from './acl.js';
import { BAD_USERNAME_OR_PASSWORD, type Authenticator, type AuthnResult } from './authn.js';
import type { BackendFailureSink } from './backends/authenticators.js';
import { AUTHN_VARS, Template, TemplateError, clientVars, truthy } from './backends/template.js';

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
const PUBLIC_KEY_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

type KeySource = Uint8Array | KeyObject | ReturnType<typeof createRemoteJWKSet>;

function loadPublicKey(value: string, where: string): KeyObject {
  const pem = !value.includes('-----BEGIN') && existsSync(value) ? readFileSync(value, 'utf8') : value;
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new TemplateError(`${where}.public_key: not a PEM public key or certificate, nor a file holding one (${(err as Error).message})`);
  }
}

export class JwtAuthenticator implements Authenticator {
  readonly id = 'jwt';
  private readonly key: KeySource;
  private readonly algorithms: string[];
  private readonly claims: Array<[string, Template]>;

  constructor(readonly name: string, readonly config: AuthenticatorConfig, private readonly onBackendFailure: BackendFailureSink) {
    const where = `authentication.${name}`;
    if (config.use_jwks) {
      let url: URL;
      try {
        url = new URL(config.endpoint);
      } catch {
        throw new TemplateError(`${where}.endpoint: required with use_jwks, a URL such as "https://auth.example.com/.well-known/jwks.json"`);
      }
      this.key = createRemoteJWKSet(url, {
        cacheMaxAge: config.refresh_interval,
        // An unknown kid fetches the set again (a rotated key), at most once a second.
        cooldownDuration: Math.min(1000, config.refresh_interval),
        timeoutDuration: config.request_timeout,
      });
      this.algorithms = PUBLIC_KEY_ALGS;
    } else if (config.algorithm === 'hmac-based') {
      if (config.secret === '') throw new TemplateError(`${where}.secret: required with algorithm = "hmac-based"`);
      let secret: Buffer;
      if (config.secret_base64_encoded) {
        if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(config.secret)) throw new TemplateError(`${where}.secret: not valid base64 (secret_base64_encoded = true)`);
        secret = Buffer.from(config.secret, 'base64');
      } else {
        secret = Buffer.from(config.secret, 'utf8');
      }
      this.key = new Uint8Array(secret);
      this.algorithms = HMAC_ALGS;
    } else {
      // The key is shared with scram (sha256 | sha512), which means nothing to a JWT.
      if (config.algorithm !== 'public-key') throw new TemplateError(`${where}.algorithm: a jwt authenticator takes "hmac-based" or "public-key", not "${config.algorithm}"`);
      if (config.public_key === '') throw new TemplateError(`${where}.public_key: required with algorithm = "public-key"`);
      this.key = loadPublicKey(config.public_key, where);
      this.algorithms = PUBLIC_KEY_ALGS;
    }
    this.claims = Object.entries(config.verify_claims)
      .map(([k, v]) => [k, Template.parse(v, AUTHN_VARS, `${where}.verify_claims`)]);
  }

  async authenticate(info: ClientInfo, password: Buffer | undefined): Promise<AuthnResult> {
    const token = this.config.from === 'password' ? password?.toString('utf8') : info.username;
    if (token === undefined || token === '') return { result: 'ignore', detail: 'token_missing' };
    let payload: JWTPayload;
    try {
      // jose checks exp (now < exp) and nbf (nbf <= now) when the token has them.
      const r = typeof this.key === 'function'
        ? await jwtVerify(token, this.key, { algorithms: this.algorithms })
        : await jwtVerify(token, this.key, { algorithms: this.algorithms });
      payload = r.payload;
    } catch (err) {
      return this.verifyError(err);
    }
    const deny = (detail: 'claim_mismatch' | 'bad_acl_claim'): AuthnResult =>
      ({ result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail, authenticator: this.name });
    if (this.claims.length > 0) {
      const vars = clientVars(info, password);
      for (const [claim, want] of this.claims) {
        if (payload[claim] !== want.render(vars)) return deny('claim_mismatch');
      }
    }
    let acl: AclRule[] | undefined;
    const aclClaim = payload[this.config.acl_claim_name];
    if (aclClaim !== undefined) {
      try {
        acl = aclFieldRules(aclClaim, `jwt:${this.name}`);
      } catch (err) {
        if (err instanceof RawRuleError) return deny('bad_acl_claim');
        throw err;
      }
    }
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    return {
      result: 'allow',
      superuser: truthy(payload['is_superuser']),
      authenticator: this.name,
      ...(acl === undefined ? {} : { acl, aclExpiresAt: exp }),
      ...(exp !== undefined && this.config.disconnect_after_expire ? { expiresAt: exp } : {}),
    };
  }

  private verifyError(err: unknown): AuthnResult {
    if (err instanceof errors.JWTExpired) {
      return { result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail: 'token_expired', authenticator: this.name };
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      const detail = err.claim === 'nbf' ? 'token_not_yet_valid' : 'claim_mismatch';
      return { result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail, authenticator: this.name };
    }
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || (err instanceof Error && !(err instanceof errors.JOSEError))) {
      // The key set could not be fetched: the endpoint is down, slow or answers nonsense.
      this.onBackendFailure(err);
      return { result: 'ignore', detail: 'backend_unavailable' };
    }
    return { result: 'ignore', detail: 'token_invalid' };
  }
}
