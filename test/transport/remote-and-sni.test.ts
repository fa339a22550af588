/**
 * How a transport names its peer (`formatRemote`: IPv6 addresses in brackets) and the TLS connector's
 * SNI: a host name is sent as `server_name`, an IP address (v4 or v6) is not (RFC 6066). The SNI is
 * read from the ClientHello a plain TCP server receives, so no certificate is needed.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { connectTls } from '../../src/transport/index.js';
import { formatRemote } from '../../src/transport/tcp.js';
import type { ResolvedTlsOptions, TransportHandler, TransportTarget } from '../../src/transport/transport.js';

describe('formatRemote', () => {
  it.each([
    ['::1', 5672, '[::1]:5672'],
    ['fe80::1%eth0', 5671, '[fe80::1%eth0]:5671'],
    ['::ffff:192.0.2.1', 5672, '[::ffff:192.0.2.1]:5672'],
    ['localhost', 5672, 'localhost:5672'],
    ['10.0.0.1', 1, '10.0.0.1:1'],
    ['broker.example.com', 5671, 'broker.example.com:5671'],
  ])('formatRemote(%j, %j) is %j', (host, port, expected) => {
    expect(formatRemote(host, port)).toBe(expected);
  });
});

/**
 * The server_name of a TLS ClientHello (`bytes` from the start of the stream), null when it has no
 * server_name extension, undefined when `bytes` does not yet hold the whole ClientHello.
 */
function sniOf(bytes: Buffer): string | null | undefined {
  if (bytes.length < 5) return undefined;
  if (bytes[0] !== 22) throw new Error(`not a TLS handshake record: ${bytes[0]}`);
  const recordLength = bytes.readUInt16BE(3);
  if (bytes.length < 5 + recordLength) return undefined;
  const hello = bytes.subarray(5, 5 + recordLength);
  if (hello[0] !== 1) throw new Error('not a ClientHello');
  let at = 4 + 2 + 32; // handshake header, client_version, random
  at += 1 + hello[at]!; // session_id
  at += 2 + hello.readUInt16BE(at); // cipher_suites
  at += 1 + hello[at]!; // compression_methods
  const end = at + 2 + hello.readUInt16BE(at);
  at += 2;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    if (type === 0) {
      // server_name_list: length (2), then name_type (1), name length (2), name
      const nameLength = hello.readUInt16BE(at + 4 + 3);
      return hello.subarray(at + 4 + 5, at + 4 + 5 + nameLength).toString('latin1');
    }
    at += 4 + length;
  }
  return null;
}

describe('the TLS connector and SNI', () => {
  let server: Server;
  let port: number;
  let nextHello: ((sni: string | null) => void) | undefined;

  beforeAll(async () => {
    server = createServer((socket: Socket) => {
      let received = Buffer.alloc(0);
      const resolve = nextHello;
      nextHello = undefined;
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const sni = sniOf(received);
        if (sni === undefined) return;
        resolve?.(sni);
        socket.destroy(); // no handshake: the client's attempt fails, which is fine here
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.close();
    await once(server, 'close');
  });

  /** Connects with `servername` and returns the SNI the server saw (null: none). */
  async function sniSent(servername: string | undefined): Promise<string | null> {
    const hello = new Promise<string | null>((resolve) => {
      nextHello = resolve;
    });
    const tls: ResolvedTlsOptions = {
      ca: undefined,
      cert: undefined,
      key: undefined,
      passphrase: undefined,
      pfx: undefined,
      rejectUnauthorized: true,
      servername,
      minVersion: undefined,
      checkServerIdentity: undefined,
    };
    const target: TransportTarget = {
      scheme: 'amqps',
      url: `amqps://127.0.0.1:${port}/`,
      hostname: '127.0.0.1',
      port,
      tls,
      socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
      timeoutMs: 5000,
      writeHighWaterMark: 1024 * 1024,
    };
    const handler: TransportHandler = { onData: () => {}, onDrain: () => {}, onClose: () => {} };
    const attempt = connectTls(target, handler, new AbortController().signal).then(
      (transport) => transport.destroy(),
      () => undefined, // the server hangs up after the ClientHello
    );
    const sni = await hello;
    await attempt;
    return sni;
  }

  it('sends a host name as SNI', async () => {
    expect(await sniSent('broker.example.com')).toBe('broker.example.com');
    expect(await sniSent('localhost')).toBe('localhost');
  });

  it('sends no SNI for an IPv4 address', async () => {
    expect(await sniSent('127.0.0.1')).toBeNull();
    expect(await sniSent('10.0.0.1')).toBeNull();
  });

  it('sends no SNI for an IPv6 address', async () => {
    expect(await sniSent('::1')).toBeNull();
    expect(await sniSent('2001:db8::17')).toBeNull();
    expect(await sniSent('::ffff:192.0.2.1')).toBeNull();
  });

  it('sends no SNI without a servername', async () => {
    expect(await sniSent(undefined)).toBeNull();
  });
});
