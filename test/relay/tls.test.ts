/**
 * TLS on both sides of the relay. To the broker: an `amqps://` broker behind the test TLS terminator
 * (the real RabbitMQ behind it), verified against the terminator's CA with SNI, and refused (1014) when
 * the certificate is not trusted. To the browser: startRelay serving `wss://` with a certificate.
 */
import { PROTOCOL_HEADER } from '../../src/protocol/index.js';
import { type Relay, startRelay } from '../../src/relay/index.js';
import { stopBroker } from '../support/broker.js';
import { startTlsTerminator, type TlsTerminator } from '../support/tls-terminator.js';
import { selfSignedCertificate } from './support/certificate.js';
import { LogLines, openClient } from './support/clients.js';
import { startFakeBroker } from './support/fake-broker.js';

let terminator: TlsTerminator;
const relays: Relay[] = [];

beforeAll(async () => {
  terminator = await startTlsTerminator();
}, 180_000);

afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

afterAll(async () => {
  await terminator?.close();
  await stopBroker();
});

/** Sends the protocol header and checks that connection.start (class 10, method 10) comes back. */
async function expectConnectionStart(url: string, ca?: string): Promise<void> {
  const client = await openClient(url, ca === undefined ? {} : { ca });
  client.send(PROTOCOL_HEADER);
  const bytes = await client.waitForBytes(11);
  expect([bytes[0], bytes.readUInt16BE(7), bytes.readUInt16BE(9)]).toEqual([1, 10, 10]);
  expect((await client.close()).code).toBe(1000);
}

describe('TLS to the broker', () => {
  it('verifies the broker against the given CA, sends SNI, and carries AMQP', async () => {
    const relay = await startRelay({
      port: 0,
      broker: `amqps://localhost:${terminator.port}`,
      brokerTls: { ca: terminator.caPem },
    });
    relays.push(relay);
    const before = terminator.serverNames.length;
    await expectConnectionStart(`ws://127.0.0.1:${relay.address!.port}`);
    expect(terminator.serverNames.slice(before)).toEqual(['localhost']);
  });

  it('closes with 1014 when the broker certificate is not trusted, naming the error in the log', async () => {
    const logs = new LogLines();
    const relay = await startRelay({
      port: 0,
      broker: `amqps://localhost:${terminator.port}`,
      brokerTls: { ca: terminator.otherCaPem },
      log: logs.log,
    });
    relays.push(relay);
    const client = await openClient(`ws://127.0.0.1:${relay.address!.port}`);
    expect(await client.closed).toEqual({ code: 1014, reason: 'broker unreachable' });
    expect(await logs.waitFor(/ close /)).toMatch(
      /reason="broker unreachable: [A-Z_]*(CERT|SIGNATURE|ISSUER)[A-Z_]* \(1014\)"/,
    );
  });

  it('checks the certificate against brokerTls.servername when the URL names an address', async () => {
    const relay = await startRelay({
      port: 0,
      broker: `amqps://127.0.0.1:${terminator.port}`,
      brokerTls: { ca: terminator.caPem, servername: 'localhost' },
    });
    relays.push(relay);
    await expectConnectionStart(`ws://127.0.0.1:${relay.address!.port}`);
  });
});

describe('wss:// to the browser', () => {
  it('serves wss:// with the certificate given', async () => {
    const { cert, key } = selfSignedCertificate();
    const broker = await startFakeBroker();
    try {
      const relay = await startRelay({ port: 0, broker: broker.url, tls: { cert, key } });
      relays.push(relay);
      const client = await openClient(`wss://localhost:${relay.address!.port}/amqp`, { ca: cert });
      const connection = await broker.nextConnection();
      client.send(PROTOCOL_HEADER);
      expect((await connection.waitForBytes(8)).equals(Buffer.from(PROTOCOL_HEADER))).toBe(true);
      connection.socket.write('hello');
      expect((await client.waitForBytes(5)).toString()).toBe('hello');
      await client.close();
      // A plain ws:// client does not get in.
      await expect(openClient(`ws://127.0.0.1:${relay.address!.port}`)).rejects.toThrow();
    } finally {
      await broker.close();
    }
  });
});
