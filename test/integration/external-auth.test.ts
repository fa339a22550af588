import { lastValueFrom } from 'rxjs';
import { AuthenticationError, ConnectionClosedError, openConnection } from '../../src/node.js';
import { type ExternalAuthListener, startExternalAuthListener } from '../support/external-auth.js';

let listener: ExternalAuthListener;

beforeAll(() => {
  listener = startExternalAuthListener();
}, 60_000);

afterAll(() => {
  listener?.close();
});

describe('SASL EXTERNAL with a client certificate (real broker)', () => {
  it('logs in as the certificate common name, with no password', async () => {
    const conn = await openConnection({
      hostname: 'localhost',
      port: listener.port,
      authMechanism: 'EXTERNAL',
      tls: { ca: listener.caPem, cert: listener.client.cert, key: listener.client.key },
    });
    try {
      const ch = await conn.openChannel();
      expect((await lastValueFrom(ch.queueDeclare('', { exclusive: true }))).queue).toMatch(/^amq\.gen-/);
    } finally {
      await lastValueFrom(conn.close());
    }
  });

  it('is refused with AuthenticationError when the common name is no user', async () => {
    const e = await openConnection({
      hostname: 'localhost',
      port: listener.port,
      authMechanism: 'EXTERNAL',
      tls: { ca: listener.caPem, cert: listener.stranger.cert, key: listener.stranger.key },
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AuthenticationError);
    expect((e as AuthenticationError).mechanism).toBe('EXTERNAL');
  });

  it('cannot even connect without a client certificate', async () => {
    const e = await openConnection({
      hostname: 'localhost',
      port: listener.port,
      authMechanism: 'EXTERNAL',
      tls: { ca: listener.caPem },
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectionClosedError);
  });
});
