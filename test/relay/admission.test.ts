/**
 * What the relay lets in, against a fake broker: the origin allow-list (exact, predicate, no Origin),
 * the connection cap, the path, the subprotocol, plain HTTP requests, and what it accepts on an open
 * WebSocket (binary only, messages up to maxMessageBytes). A refusal is an HTTP status before any
 * WebSocket or broker connection exists.
 */
import { request } from 'node:http';
import { LogLines, openClient, refusedUpgrade } from './support/clients.js';
import type { FakeBroker } from './support/fake-broker.js';
import { useRelaysToFakeBroker } from './support/relays.js';

const fixture = useRelaysToFakeBroker();
const { relayWith } = fixture;
let broker: FakeBroker;

beforeEach(() => {
  broker = fixture.broker();
});

describe('origins', () => {
  it('refuses an origin not on the list with 403 and opens nothing to the broker', async () => {
    const logs = new LogLines();
    const { url } = await relayWith({ allowedOrigins: ['https://app.example.com'], log: logs.log });
    expect(await refusedUpgrade(url, { origin: 'https://evil.example.com' })).toEqual({
      status: 403,
      body: 'origin not allowed\n',
    });
    expect(logs.lines).toEqual([
      expect.stringMatching(
        /^relay refused remote=127\.0\.0\.1:\d+ origin=https:\/\/evil\.example\.com path=\/ status=403 reason="origin not allowed"$/,
      ),
    ]);
    const allowed = await openClient(url, { origin: 'https://app.example.com' });
    await broker.nextConnection();
    expect(broker.connections).toHaveLength(1);
    await allowed.close();
  });

  it('takes a predicate, and refuses when it throws', async () => {
    const { url } = await relayWith({
      allowedOrigins: (origin) => {
        if (origin.includes('boom')) throw new Error('predicate failed');
        return origin.endsWith('.example.com');
      },
    });
    await (await openClient(url, { origin: 'https://a.example.com' })).close();
    expect((await refusedUpgrade(url, { origin: 'https://a.example.org' })).status).toBe(403);
    expect((await refusedUpgrade(url, { origin: 'https://boom.example.com' })).status).toBe(403);
  });

  it('lets a request without Origin in by default, and refuses it with allowNoOrigin: false', async () => {
    const open = await relayWith({ allowedOrigins: ['https://app.example.com'] });
    await (await openClient(open.url)).close();
    const strict = await relayWith({ allowNoOrigin: false, allowedOrigins: '*' });
    expect(await refusedUpgrade(strict.url)).toEqual({ status: 403, body: 'an Origin header is required\n' });
    await (await openClient(strict.url, { origin: 'https://anything.example' })).close();
  });

  it('refuses every browser origin when no allowedOrigins is set, and lets any in with allowedOrigins: "*"', async () => {
    // The safe default: a relay beside the broker connects from loopback, where RabbitMQ lets guest in,
    // so an unlisted page must not get through it.
    const closed = await relayWith({});
    expect(await refusedUpgrade(closed.url, { origin: 'https://evil.example' })).toEqual({
      status: 403,
      body: 'origin not allowed (the relay allows no browser origin: set allowedOrigins)\n',
    });
    await (await openClient(closed.url)).close(); // no Origin: not a browser, allowed by default
    const open = await relayWith({ allowedOrigins: '*' });
    await (await openClient(open.url, { origin: 'https://evil.example' })).close();
  });
});

describe('the connection cap', () => {
  it('answers the connection over maxConnections with 503, and takes a new one once one has closed', async () => {
    const logs = new LogLines();
    const { relay, url } = await relayWith({ maxConnections: 2, log: logs.log });
    const first = await openClient(url);
    const second = await openClient(url);
    expect(relay.connections).toBe(2);
    expect(await refusedUpgrade(url)).toEqual({ status: 503, body: 'too many connections\n' });
    expect(broker.connections).toHaveLength(2);
    await first.close();
    await logs.waitFor(/ close /);
    expect(relay.connections).toBe(1);
    const third = await openClient(url);
    expect(relay.connections).toBe(2);
    await Promise.all([second.close(), third.close()]);
  });
});

describe('paths, subprotocols and plain requests', () => {
  it('takes upgrades on its path only (query string ignored) and answers others with 404', async () => {
    const { url } = await relayWith({ path: '/amqp' });
    expect(await refusedUpgrade(`${url}/other`)).toEqual({
      status: 404,
      body: 'no WebSocket relay on this path\n',
    });
    expect((await refusedUpgrade(`${url}/amqp/x`)).status).toBe(404);
    await (await openClient(`${url}/amqp?session=1`)).close();
  });

  it("accepts the 'amqp' subprotocol when offered, and none otherwise", async () => {
    const { url } = await relayWith();
    const offered = await openClient(url, { protocols: ['mqtt', 'amqp'] });
    expect(offered.ws.protocol).toBe('amqp');
    const plain = await openClient(url);
    expect(plain.ws.protocol).toBe('');
    await Promise.all([offered.close(), plain.close()]);
  });

  it('answers a plain HTTP request with 426', async () => {
    const { relay } = await relayWith();
    const status = await new Promise<number | undefined>((resolve, reject) => {
      request({ host: '127.0.0.1', port: relay.address!.port, path: '/' }, (response) => {
        response.resume();
        resolve(response.statusCode);
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(426);
  });
});

describe('what an open WebSocket may send', () => {
  it('closes with 1003 on a text message, and ends the broker socket', async () => {
    const { url } = await relayWith();
    const client = await openClient(url);
    const connection = await broker.nextConnection();
    client.ws.send('AMQP as text');
    expect(await client.closed).toEqual({ code: 1003, reason: 'binary messages only' });
    await connection.whenEnded;
    expect(connection.receivedLength).toBe(0);
  });

  it('closes with 1009 on a message over maxMessageBytes', async () => {
    const { url } = await relayWith({ maxMessageBytes: 1024 });
    const client = await openClient(url);
    const connection = await broker.nextConnection();
    client.send(Buffer.alloc(1024, 1));
    await connection.waitForBytes(1024);
    client.send(Buffer.alloc(1025, 2));
    expect((await client.closed).code).toBe(1009);
    await connection.whenEnded;
    expect(connection.receivedLength).toBe(1024);
  });
});
