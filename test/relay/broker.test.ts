/**
 * The relay in front of the real RabbitMQ: a raw WebSocket client gets the broker's connection.start
 * for its protocol header, logs in (PLAIN) and round-trips a message through a queue with the
 * project's codec, and the relay's log lines hold neither the password nor the query string nor any
 * payload byte.
 */
import { randomBytes } from 'node:crypto';
import { PROTOCOL_HEADER } from '../../src/protocol/index.js';
import { type Relay, startRelay } from '../../src/relay/index.js';
import { type BrokerEndpoint, brokerEndpoint, stopBroker } from '../support/broker.js';
import { LogLines, openClient } from './support/clients.js';
import { WsAmqpSession } from './support/ws-amqp.js';

let endpoint: BrokerEndpoint;
let relay: Relay;
const logs = new LogLines();

beforeAll(async () => {
  endpoint = await brokerEndpoint();
  relay = await startRelay({ port: 0, broker: `amqp://${endpoint.host}:${endpoint.port}`, log: logs.log });
}, 180_000);

afterAll(async () => {
  await relay?.close();
  await stopBroker();
});

function relayUrl(path = '/'): string {
  return `ws://127.0.0.1:${relay.address!.port}${path}`;
}

describe('the relay in front of RabbitMQ', () => {
  it("carries the protocol header and brings back the broker's connection.start frame", async () => {
    const client = await openClient(relayUrl(), { protocols: ['amqp'] });
    expect(client.ws.protocol).toBe('amqp');
    client.send(PROTOCOL_HEADER);
    const bytes = await client.waitForBytes(11);
    expect(bytes[0]).toBe(1); // method frame
    expect(bytes.readUInt16BE(1)).toBe(0); // channel 0
    expect(bytes.readUInt16BE(7)).toBe(10); // class connection
    expect(bytes.readUInt16BE(9)).toBe(10); // method start
    expect((await client.close()).code).toBe(1000);
    await logs.waitFor(/ close .*reason="client closed \(1000\)"/);
  });

  it('carries a PLAIN login and a message through a queue, both ways', async () => {
    const amqp = new WsAmqpSession(await openClient(relayUrl('/amqp')));
    await amqp.login(endpoint.username, endpoint.password, endpoint.vhost);
    amqp.send(1, { name: 'channel.open' });
    await amqp.expectMethod('channel.open-ok');
    amqp.send(1, { name: 'queue.declare', queue: '', exclusive: true, autoDelete: true });
    const { queue } = (await amqp.expectMethod('queue.declare-ok')).method;
    // A body larger than a frame and than one WebSocket read, so that it crosses in pieces both ways.
    const body = randomBytes(300 * 1024);
    amqp.publish(1, '', queue, body);
    amqp.send(1, { name: 'basic.get', queue, noAck: true });
    const got = await amqp.expectMethod('basic.get-ok');
    expect(got.body?.equals(body)).toBe(true);
    amqp.send(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await amqp.expectMethod('connection.close-ok');
    // The client closes the socket after close-ok: the relay ends its broker socket.
    expect(await amqp.client.close()).toEqual({ code: 1000, reason: '' });
  });

  it('logs no password, no query string and no payload byte', async () => {
    const password = `relay-secret-${randomBytes(6).toString('hex')}`;
    const token = `token-${randomBytes(6).toString('hex')}`;
    const from = logs.lines.length;
    const amqp = new WsAmqpSession(await openClient(relayUrl(`/amqp?access_token=${token}`)));
    amqp.client.send(PROTOCOL_HEADER);
    await amqp.expectMethod('connection.start');
    amqp.sendStartOk(endpoint.username, password);
    // RabbitMQ refuses the login with connection.close 403 and resets its socket, at once or seconds
    // later: the client leaves, unless the reset (1011 from the relay) comes first.
    const refused = await amqp.expectMethod('connection.close');
    expect(refused.method.replyCode).toBe(403);
    expect([1000, 1011]).toContain((await amqp.client.close()).code);
    const open = await logs.waitFor(/ open .*path=\/amqp /, from);
    const id = /^relay (#\d+) /.exec(open)?.[1];
    const close = await logs.waitFor(new RegExp(`^relay ${id} close `), from);
    const lines = logs.lines.slice(from).filter((l) => l.startsWith(`relay ${id} `));
    expect(lines).toEqual([open, close]);
    expect(open).toMatch(
      /^relay #\d+ open remote=127\.0\.0\.1:\d+ origin=- path=\/amqp protocol=- broker=amqp:\/\/[^ ]+$/,
    );
    expect(close).toMatch(
      /^relay #\d+ close remote=127\.0\.0\.1:\d+ origin=- path=\/amqp duration_ms=\d+ bytes_up=\d+ bytes_down=\d+ reason="(client closed \(1000\)|broker error: ECONNRESET \(1011\))"$/,
    );
    const text = lines.join('\n');
    for (const secret of [password, token, 'access_token', 'AMQP', 'PLAIN', 'ACCESS_REFUSED']) {
      expect(text).not.toContain(secret);
    }
  });
});
