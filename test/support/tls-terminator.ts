/**
 * A TLS front for the test broker: a `tls.createServer` on 127.0.0.1 that forwards every connection,
 * once its handshake is done, to the broker's plain AMQP port (from {@link brokerEndpoint}), or to
 * another plain port given (Mosquitto's), and back.
 * Its certificates are made for the occasion with the `openssl` CLI in a temporary directory: a CA, a
 * server certificate signed by it for `DNS:localhost, IP:127.0.0.1`, and an unrelated second CA (to be
 * trusted by a client that should then reject the server).
 *
 * @example
 * ```ts
 * const terminator = await startTlsTerminator();
 * const transport = await connectTls({ ...target, port: terminator.port, tls: { ...tls, ca: [terminator.caPem] } }, handler, signal);
 * await terminator.close();
 * ```
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { brokerEndpoint } from './broker.js';

/** A running terminator. */
export interface TlsTerminator {
  /** The TLS port on 127.0.0.1. */
  readonly port: number;
  /** The CA that signed the server certificate (PEM). */
  readonly caPem: string;
  /** A CA unrelated to the server certificate (PEM). */
  readonly otherCaPem: string;
  /** The SNI name of each completed handshake, in order (`false` when the client sent none). */
  readonly serverNames: readonly (string | false)[];
  /** Stops listening, destroys every open socket and removes the temporary directory. */
  close(): Promise<void>;
}

const OPENSSL_CONFIG = `
[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = unused

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
`;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function requireOpenssl(): void {
  try {
    execFileSync('openssl', ['version'], { stdio: ['ignore', 'ignore', 'ignore'] });
  } catch (e) {
    throw new Error(
      'the TLS tests need the openssl command-line tool on the PATH (apt-get install openssl)',
      {
        cause: e,
      },
    );
  }
}

function serial(): string {
  return `0x${randomBytes(8).toString('hex')}`;
}

/** Makes a self-signed CA: `<name>.key` and `<name>.pem`. */
function makeCa(dir: string, name: string, commonName: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-config',
    'openssl.cnf',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    '-extensions',
    'ca_ext',
    '-set_serial',
    serial(),
  ]);
}

/** Makes `server.key` and `server.pem` signed by the CA `<ca>`. */
function makeServerCertificate(dir: string, ca: string): void {
  openssl(dir, [
    'req',
    '-new',
    '-config',
    'openssl.cnf',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    serial(),
    '-days',
    '2',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    'server_ext',
    '-out',
    'server.pem',
  ]);
}

/** Forwards bytes both ways between the TLS client and the broker; either side closing closes both. */
function bridge(client: TLSSocket, upstream: Socket): void {
  const closeBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', closeBoth);
  upstream.on('error', closeBoth);
  client.on('close', closeBoth);
  upstream.on('close', closeBoth);
  client.pipe(upstream);
  upstream.pipe(client);
}

/**
 * Generates the certificates and starts the terminator on 127.0.0.1 (a free port), in front of
 * `upstream` (default: the AMQP test broker; the mq tests front Mosquitto with it too).
 *
 * @throws Error when `openssl` is missing or the broker cannot be found.
 */
export async function startTlsTerminator(upstream?: {
  readonly host: string;
  readonly port: number;
}): Promise<TlsTerminator> {
  requireOpenssl();
  const broker = upstream ?? (await brokerEndpoint());
  const dir = mkdtempSync(join(tmpdir(), 'rxamqp-tls-'));
  try {
    writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
    makeCa(dir, 'ca', 'rxamqp test CA');
    makeCa(dir, 'other-ca', 'rxamqp unrelated CA');
    makeServerCertificate(dir, 'ca');
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const otherCaPem = readFileSync(join(dir, 'other-ca.pem'), 'utf8');
  const sockets = new Set<Socket>();
  const serverNames: (string | false)[] = [];
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const server = createServer({
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.pem')),
  });
  // Raw connections, before and during the handshake, so that close() can end them too.
  server.on('connection', track);
  // Failed handshakes (the tests make them on purpose) are not the terminator's concern.
  server.on('tlsClientError', (_error, socket) => socket.destroy());
  server.on('secureConnection', (client) => {
    serverNames.push(client.servername ?? false);
    track(client);
    const upstream = connect({ host: broker.host, port: broker.port });
    track(upstream);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    bridge(client, upstream);
  });

  const address = await new Promise<AddressInfo>((resolve, reject) => {
    const failed = (error: Error): void => {
      rmSync(dir, { recursive: true, force: true });
      reject(error);
    };
    server.once('error', failed);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', failed);
      resolve(server.address() as AddressInfo);
    });
  });

  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    caPem,
    otherCaPem,
    serverNames,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
