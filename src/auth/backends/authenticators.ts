/**
 * `password_based` authenticators over external backends, with EMQX 5's answers:
 *
 * - redis / mysql / postgresql: the user record is looked up with the client's placeholders.
 *   No record: ignore (the next authenticator decides). A record without password_hash (or
 *   password): deny 0x87. Wrong password, or none given: deny 0x86. Otherwise allow, superuser
 *   when is_superuser is true / "true" / 1 / "1".
 * - http: 200 with a JSON (or form) body: `result` allow / deny / ignore (missing or unknown:
 *   ignore), `is_superuser`; 204: allow; any other status or a body that does not parse:
 *   ignore (emqx_authn_http:authenticate/2). An `acl` field in an allow (a list of rules or
 *   {pub, sub, all} lists) gives the client its own rules, checked before the sources; a
 *   malformed one refuses the client (0x86), as EMQX does.
 *
 * A backend that is down, refuses, or does not answer within request_timeout makes the
 * authenticator answer ignore, as EMQX does (its resource query error -> ignore): the chain
 * goes on, and a chain where every authenticator ignores refuses the client with 0x87. The
 * failure is reported through `onBackendFailure` (logged and counted by the caller).
 */
import type { AuthenticatorConfig } from '../../config/index.js';
import type { ClientInfo } from '../../hooks/index.js';
import { BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED, type Authenticator, type AuthnResult } from '../authn.js';
import { RawRuleError, aclFieldRules } from '../acl.js';
import { verifyPassword } from '../password.js';
import { HttpRequester, parseResponseBody } from './http.js';
import { clientVars, truthy } from './template.js';
import type { UserRecordLookup } from './types.js';

export type BackendFailureSink = (err: unknown) => void;

function text(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

export class DatabaseAuthenticator implements Authenticator {
  readonly id: string;

  constructor(
    readonly name: string,
    readonly config: AuthenticatorConfig,
    private readonly users: UserRecordLookup,
    private readonly onBackendFailure: BackendFailureSink,
  ) {
    this.id = `password_based:${config.backend}`;
  }

  async authenticate(info: ClientInfo, password: Buffer | undefined): Promise<AuthnResult> {
    let user: Readonly<Record<string, unknown>> | null;
    try {
      user = await this.users.lookup(clientVars(info, password));
    } catch (err) {
      this.onBackendFailure(err);
      return { result: 'ignore', detail: 'backend_unavailable' };
    }
    if (user === null) return { result: 'ignore', detail: 'user_not_found' };
    if (password === undefined) return { result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail: 'password_missing', authenticator: this.name };
    const hash = text(user['password_hash'] ?? user['password']);
    if (hash === undefined) return { result: 'deny', reasonCode: NOT_AUTHORIZED, detail: 'no_password_hash', authenticator: this.name };
    const salt = text(user['salt']) ?? '';
    const ok = await verifyPassword(this.config.password_hash_algorithm, password, hash, salt);
    if (!ok) return { result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail: 'password_mismatch', authenticator: this.name };
    return { result: 'allow', superuser: truthy(user['is_superuser']), authenticator: this.name };
  }

  close(): Promise<void> {
    return this.users.close();
  }
}

export class HttpAuthenticator implements Authenticator {
  readonly id = 'password_based:http';

  constructor(
    readonly name: string,
    private readonly http: HttpRequester,
    private readonly onBackendFailure: BackendFailureSink,
  ) {}

  async authenticate(info: ClientInfo, password: Buffer | undefined): Promise<AuthnResult> {
    let res;
    try {
      res = await this.http.request(clientVars(info, password));
    } catch (err) {
      this.onBackendFailure(err);
      return { result: 'ignore', detail: 'backend_unavailable' };
    }
    if (res.status === 204) return { result: 'allow', superuser: false, authenticator: this.name };
    if (res.status !== 200) {
      this.onBackendFailure(new Error(`HTTP status ${res.status}`));
      return { result: 'ignore', detail: 'backend_ignored' };
    }
    const body = parseResponseBody(res);
    if (body === undefined) {
      this.onBackendFailure(new Error(`response body is not JSON or form data (content-type ${JSON.stringify(res.contentType)})`));
      return { result: 'ignore', detail: 'backend_ignored' };
    }
    switch (body['result']) {
      case 'allow': {
        const superuser = truthy(body['is_superuser']);
        if (body['acl'] === undefined) return { result: 'allow', superuser, authenticator: this.name };
        // The client's own rules, checked before the sources (EMQX 5.x `acl` in the response).
        try {
          return { result: 'allow', superuser, authenticator: this.name, acl: aclFieldRules(body['acl'], `http:${this.name}`) };
        } catch (err) {
          if (!(err instanceof RawRuleError)) throw err;
          return { result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail: 'bad_acl_claim', authenticator: this.name };
        }
      }
      case 'deny':
        return { result: 'deny', reasonCode: NOT_AUTHORIZED, detail: 'backend_denied', authenticator: this.name };
      default:
        return { result: 'ignore', detail: 'backend_ignored' };
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }
}
