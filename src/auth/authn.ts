/**
 * The authentication chain (EMQX emqx_authn_chains): authenticators in config order; one that
 * does not know the client answers `ignore` and the next is asked; the first allow or deny
 * decides; all ignoring means not authorized. An empty chain is never run: every client may
 * connect (index.ts does not register the hook).
 *
 * The reason a client was refused is for the log only; the client learns just the CONNACK
 * code: 0x86 bad username or password, 0x87 not authorized (3.1.1: 4 / 5).
 */
import type { AuthenticatorConfig } from '../config/index.js';
import type { ClientInfo } from '../hooks/index.js';
import type { AclRule } from './acl.js';
import { verifyPassword } from './password.js';
import { UserStore } from './users.js';

/** MQTT 5 CONNACK codes the chain can ask for. */
export const BAD_USERNAME_OR_PASSWORD = 0x86;
export const NOT_AUTHORIZED = 0x87;

export type AuthnResult =
  | {
    readonly result: 'allow';
    readonly superuser: boolean;
    readonly authenticator: string;
    /** Rules that come with the client's credentials (the JWT `acl` claim), checked before the sources. */
    readonly acl?: readonly AclRule[];
    /** When `acl` stops applying (ms since epoch; the token's exp); after it the claim denies. */
    readonly aclExpiresAt?: number;
    /**
     * When the credentials stop being valid (ms since epoch; a JWT's exp with
     * disconnect_after_expire): the connection is closed then (EMQX auth_expire_at).
     */
    readonly expiresAt?: number;
  }
  | {
    readonly result: 'deny';
    /** MQTT 5 CONNACK reason code: 0x86 or 0x87. */
    readonly reasonCode: number;
    /** For logs only, never for the client. */
    readonly detail: AuthnDenyDetail;
    readonly authenticator: string | undefined;
  }
  | { readonly result: 'ignore'; readonly detail: AuthnIgnoreDetail };

/** Why an authenticator refused (logs only). */
export type AuthnDenyDetail =
  | 'password_missing' | 'password_mismatch' | 'no_authenticator_matched' | 'no_password_hash'
  | 'backend_denied' | 'bad_response' | 'token_expired' | 'token_not_yet_valid' | 'claim_mismatch' | 'bad_acl_claim';

/** Why an authenticator passed the client on (logs only). */
export type AuthnIgnoreDetail =
  | 'user_id_missing' | 'user_not_found' | 'backend_unavailable' | 'backend_ignored' | 'token_missing' | 'token_invalid';

export interface Authenticator {
  /** `<name>` of `authentication.<name>`. */
  readonly name: string;
  /** EMQX's authenticator id, e.g. `password_based:built_in_database`. */
  readonly id: string;
  authenticate(info: ClientInfo, password: Buffer | undefined): Promise<AuthnResult>;
  /** Releases connections and timers (broker stop). */
  close?(): Promise<void>;
}

/** `password_based` + `built_in_database`: users held by the broker. */
export class BuiltInDatabaseAuthenticator implements Authenticator {
  readonly id = 'password_based:built_in_database';
  readonly users: UserStore;

  constructor(readonly name: string, readonly config: AuthenticatorConfig) {
    this.users = new UserStore(config.password_hash_algorithm);
  }

  async authenticate(info: ClientInfo, password: Buffer | undefined): Promise<AuthnResult> {
    const userId = this.config.user_id_type === 'username' ? info.username : info.clientId;
    if (userId === undefined || userId === '') return { result: 'ignore', detail: 'user_id_missing' };
    const user = this.users.get(userId);
    if (user === undefined) return { result: 'ignore', detail: 'user_not_found' };
    const deny = (detail: 'password_missing' | 'password_mismatch'): AuthnResult =>
      ({ result: 'deny', reasonCode: BAD_USERNAME_OR_PASSWORD, detail, authenticator: this.name });
    if (password === undefined) return deny('password_missing');
    const ok = await verifyPassword(this.users.algorithm, password, user.password_hash, user.salt);
    return ok ? { result: 'allow', superuser: user.is_superuser, authenticator: this.name } : deny('password_mismatch');
  }
}

/**
 * Runs the chain. An authenticator that throws is reported through `onError` and passed over,
 * as EMQX does with a crashed provider; so a broken backend never lets a client in by itself.
 */
export async function runChain(
  chain: readonly Authenticator[],
  info: ClientInfo,
  password: Buffer | undefined,
  onError: (a: Authenticator, err: unknown) => void,
): Promise<AuthnResult> {
  for (const a of chain) {
    let r: AuthnResult;
    try {
      r = await a.authenticate(info, password);
    } catch (err) {
      onError(a, err);
      continue;
    }
    if (r.result !== 'ignore') return r;
  }
  return { result: 'deny', reasonCode: NOT_AUTHORIZED, detail: 'no_authenticator_matched', authenticator: undefined };
}
