/**
 * Rotating credentials: a credentials provider asked before every connection attempt, a secret
 * refreshed before it expires (`connection.update-secret`, without reconnecting), and
 * `connection.updateSecret` called by hand. With RabbitMQ's OAuth 2 plugin the password is an access
 * token; here a stand-in token service hands out the broker's password with a short lifetime.
 *
 *   npx tsx examples/rotating-credentials.ts     # the broker is AMQP_URL, or amqp://guest:guest@127.0.0.1:5672
 *
 * It prints each time the provider is asked (at the connect, then 5 s before the token expires), that
 * the connection is still open, and that a secret handed over by hand was accepted. On failure it prints one line and exits with status 1.
 */
import { type Connection, connect, type ProvidedCredentials } from 'rxamqp';
import { firstValueFrom, switchMap, take, tap, timeout, timer } from 'rxjs';

const url = new URL(process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672');
const username = decodeURIComponent(url.username) || 'guest';
const password = decodeURIComponent(url.password) || 'guest';
// The provider gives the credentials: keep them out of the URL the client sees.
url.username = '';
url.password = '';

/** A stand-in for an OAuth 2 client: each "token" lives 10 seconds. */
let issued = 0;
async function fetchToken(): Promise<ProvidedCredentials> {
  issued++;
  console.log(`token service: issuing token ${issued}`);
  return { username, password, expiresAt: Date.now() + 10_000 };
}

const run$ = connect(url.toString(), { credentials: fetchToken }).pipe(
  tap((conn: Connection) => console.log(`connected to ${conn.url}`)),
  // The secret is refreshed 5 s before it expires: after 6 s, a second token has been handed over.
  // (switchMap, not take(1) first: ending the connect() subscription closes the connection.)
  switchMap((conn) =>
    timer(6_000).pipe(
      tap(() => console.log(`after 6 s: ${issued} tokens issued, connection open: ${conn.isOpen}`)),
      // Rotating by hand (a token refreshed elsewhere in the application): same handshake.
      switchMap(() => conn.updateSecret(password, 'rotated by the example')),
      tap(() => console.log('updateSecret: the broker accepted the new secret')),
    ),
  ),
  take(1),
  timeout(20_000),
);

try {
  await firstValueFrom(run$);
} catch (e) {
  console.error(`rotating credentials failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
