/**
 * RabbitMQ's OAuth 2 backend for the tests, without an identity provider: {@link enableOAuth2} enables
 * the `rabbitmq_auth_backend_oauth2` plugin (shipped, disabled, with RabbitMQ 3.10) on the local broker
 * and configures it at run time with `rabbitmqctl eval` to trust JWTs signed with a symmetric key (HS256)
 * that this process draws at random; {@link OAuth2Backend.mint} signs tokens with it (node:crypto).
 * `rabbit.auth_backends` becomes `[rabbit_auth_backend_oauth2 | <what it was>]`, so that guest/guest and
 * every other user of the internal backend keep working for suites running at the same time;
 * {@link OAuth2Backend.restore} puts back the previous values (call it in `afterAll`). The previous
 * values are kept in the broker itself, so a run killed before its `afterAll` is repaired by the next
 * one: it finds them there and keeps them instead of saving its own configuration as "previous".
 * The plugin stays enabled (it does nothing unless listed in `auth_backends`).
 *
 * RabbitMQ 3.10.8's configuration, from the plugin's source (uaa_jwt, uaa_jwt_jwk, uaa_jwt_jwt,
 * rabbit_auth_backend_oauth2 at tag v3.10.8): `resource_server_id` (a binary) is the audience the token
 * must list in `aud` and the prefix of its scopes; `key_config` is a proplist with `default_key` (the key
 * id for tokens without `kid`) and `signing_keys`, a map from key id to `{map, JWK}`, where a symmetric
 * key is `#{<<"kty">> => <<"oct">>, <<"alg">> => <<"HS256">>, <<"k">> => base64url(key)}`. A token
 * must have both `scope` and `aud`; the user name is its `client_id`, else its `sub`.
 *
 * Needs the broker on this machine and `rabbitmqctl` / `rabbitmq-plugins` (root); without them the
 * suite fails saying so.
 *
 * @example
 * ```ts
 * let oauth: OAuth2Backend;
 * beforeAll(async () => { oauth = await enableOAuth2(); });
 * afterAll(() => oauth?.restore());
 * const token = oauth.mint({ sub: 'svc', expiresIn: 60 });
 * ```
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The audience tokens must name, and the prefix of their scopes. */
export const RESOURCE_SERVER_ID = 'rxamqp_test';
/** The id of the signing key (the tokens' `kid`, and the broker's `default_key`). */
export const SIGNING_KEY_ID = 'rxamqp-test-key';
/** Full access to every vhost and resource, in RabbitMQ's scope syntax with the resource server prefix. */
export const FULL_ACCESS = ['configure', 'write', 'read']
  .map((p) => `${RESOURCE_SERVER_ID}.${p}:*/*`)
  .join(' ');

/** What a test token says; everything but `sub` has a default. */
export interface TokenClaims {
  /** The user name RabbitMQ gives the connection (unless `client_id` is set). */
  readonly sub: string;
  /** Space-separated scopes; default {@link FULL_ACCESS}. */
  readonly scope?: string;
  /** Expiry in seconds since the epoch (JWT `exp`); default `expiresIn` from now. */
  readonly exp?: number;
  /** Seconds from now to the expiry when `exp` is not given; default 3600. */
  readonly expiresIn?: number;
  /** Audience; default {@link RESOURCE_SERVER_ID}. */
  readonly aud?: string | readonly string[];
  /** Other claims (jti, client_id...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A minted token and when it expires. */
export interface MintedToken {
  readonly token: string;
  /** The JWT `exp` (seconds since the epoch). */
  readonly exp: number;
  /** The same instant in milliseconds, for a provider's `expiresAt`. */
  readonly expiresAt: number;
}

/** The OAuth 2 backend configured on the local broker. */
export interface OAuth2Backend {
  /** `auth_backends` before this suite changed it, as the broker printed it. */
  readonly previousAuthBackends: string;
  /** Signs a token the broker accepts (with the claims given). */
  mint(claims: TokenClaims): MintedToken;
  /** Signs a token with another key: the broker refuses it (bad signature). */
  mintForged(claims: TokenClaims): MintedToken;
  /** Puts back the previous `auth_backends` and OAuth 2 settings. Idempotent. */
  restore(): Promise<void>;
}

async function command(name: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(name, args, { encoding: 'utf8', timeout: 60_000 });
    return stdout;
  } catch (e) {
    const detail = ((e as { stderr?: string }).stderr ?? '').trim() || (e as Error).message;
    throw new Error(
      `${name} ${args[0] ?? ''} failed: ${detail.slice(0, 500)}\n` +
        'The OAuth 2 tests configure the local RabbitMQ (3.10 or later, with its rabbitmq_auth_backend_oauth2 ' +
        'plugin) with rabbitmq-plugins and rabbitmqctl, run as root on the broker machine ' +
        '(apt-get install rabbitmq-server; rabbitmq-server -detached).',
    );
  }
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function sign(key: Buffer, claims: TokenClaims): MintedToken {
  const exp = claims.exp ?? Math.floor(Date.now() / 1000) + (claims.expiresIn ?? 3600);
  const header = { alg: 'HS256', typ: 'JWT', kid: SIGNING_KEY_ID };
  const payload = {
    ...claims.extra,
    sub: claims.sub,
    aud: claims.aud ?? RESOURCE_SERVER_ID,
    scope: claims.scope ?? FULL_ACCESS,
    iat: Math.floor(Date.now() / 1000),
    exp,
  };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = createHmac('sha256', key).update(signingInput).digest();
  return { token: `${signingInput}.${base64url(signature)}`, exp, expiresAt: exp * 1000 };
}

/** Where the previous settings are kept in the broker (rabbit's application environment). */
const SAVED = 'rxamqp_test_saved_oauth2_settings';

/**
 * Enables and configures the OAuth 2 backend on the local broker (see the module documentation), and
 * checks that it took: `auth_backends` lists it first.
 */
export async function enableOAuth2(): Promise<OAuth2Backend> {
  const key = randomBytes(32);
  await command('rabbitmq-plugins', ['enable', '--quiet', 'rabbitmq_auth_backend_oauth2']);
  const jwk = `#{<<"kty">> => <<"oct">>, <<"alg">> => <<"HS256">>, <<"k">> => <<"${base64url(key)}">>}`;
  const keyConfig = `[{default_key, <<"${SIGNING_KEY_ID}">>}, {signing_keys, #{<<"${SIGNING_KEY_ID}">> => {map, ${jwk}}}}]`;
  const out = await command('rabbitmqctl', [
    'eval',
    [
      `Saved = case application:get_env(rabbit, ${SAVED}) of`,
      '  {ok, S} -> S;',
      '  undefined ->',
      '    S = {application:get_env(rabbit, auth_backends),',
      '         application:get_env(rabbitmq_auth_backend_oauth2, resource_server_id),',
      '         application:get_env(rabbitmq_auth_backend_oauth2, key_config)},',
      `    ok = application:set_env(rabbit, ${SAVED}, S),`,
      '    S',
      'end,',
      '{{ok, Backends}, _, _} = Saved,',
      `ok = application:set_env(rabbitmq_auth_backend_oauth2, resource_server_id, <<"${RESOURCE_SERVER_ID}">>),`,
      `ok = application:set_env(rabbitmq_auth_backend_oauth2, key_config, ${keyConfig}),`,
      'ok = application:set_env(rabbit, auth_backends, [rabbit_auth_backend_oauth2 | lists:delete(rabbit_auth_backend_oauth2, Backends)]),',
      '{Backends, application:get_env(rabbit, auth_backends)}.',
    ].join('\n'),
  ]);
  const printed = out.replace(/\s+/g, ' ').trim();
  const match = /^\{(.*),\s*\{ok,\s*\[rabbit_auth_backend_oauth2\b.*\]\}\}$/.exec(printed);
  if (match === null) {
    throw new Error(
      `rabbitmqctl eval did not configure the OAuth 2 backend as expected; it printed: ${printed}`,
    );
  }
  let restored = false;
  return {
    previousAuthBackends: match[1]!.trim(),
    mint: (claims) => sign(key, claims),
    mintForged: (claims) => sign(randomBytes(32), claims),
    restore: async () => {
      if (restored) return;
      restored = true;
      const reset = (app: string, name: string, value: string): string =>
        `case ${value} of {ok, V_${name}} -> ok = application:set_env(${app}, ${name}, V_${name}); undefined -> ok = application:unset_env(${app}, ${name}) end`;
      await command('rabbitmqctl', [
        'eval',
        [
          `case application:get_env(rabbit, ${SAVED}) of`,
          '  undefined -> ok;',
          '  {ok, {Backends, ResourceServerId, KeyConfig}} ->',
          `    ${reset('rabbit', 'auth_backends', 'Backends')},`,
          `    ${reset('rabbitmq_auth_backend_oauth2', 'resource_server_id', 'ResourceServerId')},`,
          `    ${reset('rabbitmq_auth_backend_oauth2', 'key_config', 'KeyConfig')},`,
          `    ok = application:unset_env(rabbit, ${SAVED})`,
          'end.',
        ].join('\n'),
      ]);
    },
  };
}

/** `auth_backends` as the broker prints it now (for checks that the restore worked). */
export async function currentAuthBackends(): Promise<string> {
  const out = await command('rabbitmqctl', ['eval', 'application:get_env(rabbit, auth_backends).']);
  return out.replace(/\s+/g, ' ').trim();
}
