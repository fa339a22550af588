import { lastValueFrom } from 'rxjs';
import { ConnectionClosedError, connect, openConnection } from '../../src/node.js';
import { startTlsTerminator, type TlsTerminator } from '../support/tls-terminator.js';

let terminator: TlsTerminator;

beforeAll(async () => {
  terminator = await startTlsTerminator();
});

afterAll(async () => {
  await terminator?.close();
});

describe('TLS to the real broker through a terminator', () => {
  it('connects with verification on and the right CA, and runs AMQP over it', async () => {
    const conn = await openConnection({
      hostname: 'localhost',
      port: terminator.port,
      tls: { ca: terminator.caPem },
    });
    try {
      expect(conn.serverProperties.product).toBe('RabbitMQ');
      expect(conn.url).toMatch(/^amqps:\/\/guest@localhost:\d+\//);
      const ch = await conn.openChannel();
      const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      expect(queue).toMatch(/^amq\.gen-/);
      expect(terminator.serverNames).toContain('localhost'); // SNI was sent
    } finally {
      await lastValueFrom(conn.close());
    }
  });

  it('accepts an amqps:// URL with the CA in the options', async () => {
    const conn = await openConnection(`amqps://guest:guest@localhost:${terminator.port}`, {
      tls: { ca: terminator.caPem },
    });
    expect(conn.isOpen).toBe(true);
    await lastValueFrom(conn.close());
  });

  it('rejects a certificate that does not match the host name', async () => {
    const e = await openConnection({
      hostname: '127.0.0.1',
      port: terminator.port,
      tls: { ca: terminator.caPem, servername: 'wrong.example' },
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectionClosedError);
    expect((e as ConnectionClosedError).code).toBe('TLS_HANDSHAKE_FAILED');
    expect(String((e as Error).cause)).toMatch(/wrong\.example|altnames|Hostname/i);
  });

  it('rejects a certificate from an unknown CA, and connects with verification explicitly off', async () => {
    const e = await openConnection({
      hostname: 'localhost',
      port: terminator.port,
      tls: { ca: terminator.otherCaPem },
    }).catch((x: unknown) => x);
    expect((e as ConnectionClosedError).code).toBe('TLS_HANDSHAKE_FAILED');
    const insecure = await openConnection({
      hostname: 'localhost',
      port: terminator.port,
      tls: { ca: terminator.otherCaPem, rejectUnauthorized: false },
    });
    expect(insecure.isOpen).toBe(true);
    await lastValueFrom(insecure.close());
  });

  it('completes the connect Observable when the client closes it over TLS', async () => {
    const events: string[] = [];
    const conn = await new Promise<import('../../src/node.js').Connection>((resolve, reject) =>
      connect({ hostname: 'localhost', port: terminator.port, tls: { ca: terminator.caPem } }).subscribe({
        next: resolve,
        error: reject,
        complete: () => events.push('complete'),
      }),
    );
    await lastValueFrom(conn.close());
    expect(events).toEqual(['complete']);
  });
});
