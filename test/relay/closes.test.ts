/**
 * Every way a relayed connection ends, against a fake broker, and the WebSocket close code each maps to:
 * the broker ends (1000, after every byte), the broker resets (1011), the broker cannot be reached or
 * does not finish connecting in time (1014), the browser closes (the broker socket is ended), and
 * relay.close() (1001 for everyone, then it resolves).
 */

import { LogLines, openClient } from './support/clients.js';
import {
  closedPort,
  type FakeBroker,
  PatternChecker,
  patternAt,
  startFakeBroker,
} from './support/fake-broker.js';
import { useRelaysToFakeBroker } from './support/relays.js';

const fixture = useRelaysToFakeBroker();
const { relayWith } = fixture;
let broker: FakeBroker;

beforeEach(() => {
  broker = fixture.broker();
});

describe('closes', () => {
  it('closes with 1000 after the last byte when the broker ends', async () => {
    const logs = new LogLines();
    const { relay, url } = await relayWith({ log: logs.log });
    const client = await openClient(url);
    const connection = await broker.nextConnection();
    const size = 3 * 1024 * 1024 + 17;
    connection.socket.end(patternAt(0, size));
    expect(await client.closed).toEqual({ code: 1000, reason: '' });
    expect(client.receivedLength).toBe(size);
    new PatternChecker().push(client.bytes());
    const line = await logs.waitFor(/ close /);
    expect(line).toContain(`bytes_down=${size} `);
    expect(line).toContain('reason="broker closed (1000)"');
    expect(relay.connections).toBe(0);
  });

  it('closes with 1011 when the broker connection breaks', async () => {
    const { url } = await relayWith();
    const client = await openClient(url);
    const connection = await broker.nextConnection();
    // Bytes through first: the relay's side of the connection is up (not still connecting: 1014).
    client.send(Buffer.from('x'));
    await connection.waitForBytes(1);
    connection.socket.resetAndDestroy();
    expect(await client.closed).toEqual({ code: 1011, reason: 'broker connection failed' });
  });

  it('closes with 1014 at once when nothing listens at the broker address', async () => {
    const logs = new LogLines();
    const { url } = await relayWith({ broker: `amqp://127.0.0.1:${await closedPort()}`, log: logs.log });
    const client = await openClient(url);
    expect(await client.closed).toEqual({ code: 1014, reason: 'broker unreachable' });
    expect(await logs.waitFor(/ close /)).toContain('reason="broker unreachable: ECONNREFUSED (1014)"');
  });

  it('closes with 1014 when connecting to the broker takes longer than connectTimeoutMs', async () => {
    // A TCP server that never answers the TLS handshake.
    const silent = await startFakeBroker({ silent: true });
    try {
      const logs = new LogLines();
      const { url } = await relayWith({
        broker: `amqps://127.0.0.1:${silent.port}`,
        connectTimeoutMs: 150,
        log: logs.log,
      });
      const client = await openClient(url);
      expect(await client.closed).toEqual({ code: 1014, reason: 'broker connect timeout' });
      expect(await logs.waitFor(/ close /)).toContain('reason="broker connect timeout after 150 ms (1014)"');
    } finally {
      await silent.close();
    }
  });

  it('ends the broker socket when the browser closes', async () => {
    const logs = new LogLines();
    const { relay, url } = await relayWith({ log: logs.log });
    const client = await openClient(url);
    const connection = await broker.nextConnection();
    client.send(Buffer.from('last words'));
    await connection.waitForBytes(10);
    await client.close(1000);
    await connection.whenEnded;
    expect(connection.bytes().toString()).toBe('last words');
    connection.socket.end();
    expect(await logs.waitFor(/ close /)).toContain('reason="client closed (1000)"');
    expect(relay.connections).toBe(0);
  });

  it('relay.close() closes every WebSocket with 1001 and its broker socket, then resolves', async () => {
    const { relay, url } = await relayWith();
    const clients = await Promise.all([openClient(url), openClient(url), openClient(url)]);
    const connections = await Promise.all(clients.map(() => broker.nextConnection()));
    expect(relay.connections).toBe(3);
    await relay.close();
    expect(relay.connections).toBe(0);
    for (const client of clients)
      expect(await client.closed).toEqual({ code: 1001, reason: 'relay shutting down' });
    for (const connection of connections) {
      await connection.whenClosed;
      expect(connection.ended).toBe(true);
    }
    // Closed means closed: nothing listens any more.
    await expect(openClient(url)).rejects.toThrow(/ECONNREFUSED/);
    expect(relay.close()).toBe(relay.close());
  });
});
