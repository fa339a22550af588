/**
 * A self-signed certificate for `localhost` and 127.0.0.1, made with the openssl CLI for the run: what
 * the relay's `wss://` tests serve and the TLS fake broker presents. Trusting the certificate itself
 * as the CA is enough for Node to verify it.
 *
 * @example
 * ```ts
 * const { cert, key } = selfSignedCertificate();
 * const relay = await startRelay({ port: 0, tls: { cert, key } });
 * ```
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, PEM. */
export interface Certificate {
  readonly cert: string;
  readonly key: string;
}

let made: Certificate | undefined;

/** The certificate (made once per test file). Throws, saying what to install, without openssl. */
export function selfSignedCertificate(): Certificate {
  if (made !== undefined) return made;
  const dir = mkdtempSync(join(tmpdir(), 'rxamqp-relay-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    made = {
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    };
    return made;
  } catch (e) {
    throw new Error(
      'the relay TLS tests need the openssl command-line tool on the PATH (apt-get install openssl)',
      {
        cause: e,
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
