/**
 * examples/relay/embedded.ts, run as users run it (tsx) against the real RabbitMQ: it serves its page,
 * relays WebSockets from the page's origin on /amqp (the broker's connection.start comes back), refuses
 * other origins, and stops on SIGINT.
 */
import { get } from 'node:http';
import { PROTOCOL_HEADER } from '../../src/protocol/index.js';
import { brokerEndpoint, stopBroker } from '../support/broker.js';
import { openClient, refusedUpgrade } from './support/clients.js';
import { killChildren, runTs } from './support/process.js';

afterEach(killChildren);
afterAll(() => stopBroker());

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(`${response.statusCode} ${body}`));
    }).on('error', reject);
  });
}

describe('examples/relay/embedded.ts', () => {
  it('serves its page, relays the page origin on /amqp, and stops on SIGINT', async () => {
    const { host, port: brokerPort } = await brokerEndpoint();
    const example = runTs('examples/relay/embedded.ts', [], {
      ...process.env,
      PORT: '0',
      AMQP_URL: `amqp://guest:guest@${host}:${brokerPort}/`,
    });
    const serving = await example.waitForLine(/^Serving http:\/\/localhost:\d+\//);
    const port = Number(/localhost:(\d+)/.exec(serving)?.[1]);
    expect(serving).toBe(
      `Serving http://localhost:${port}/ with the relay on ws://localhost:${port}/amqp -> amqp://${host}:${brokerPort}`,
    );
    expect(await fetchText(`http://127.0.0.1:${port}/`)).toMatch(/^200 <!doctype html>/);

    const client = await openClient(`ws://127.0.0.1:${port}/amqp`, {
      origin: `http://localhost:${port}`,
      protocols: ['amqp'],
    });
    client.send(PROTOCOL_HEADER);
    const bytes = await client.waitForBytes(11);
    expect([bytes[0], bytes.readUInt16BE(7), bytes.readUInt16BE(9)]).toEqual([1, 10, 10]);
    await client.close();
    await example.waitForLine(/^relay #1 close .*reason="client closed \(1000\)"/);

    expect(
      (await refusedUpgrade(`ws://127.0.0.1:${port}/amqp`, { origin: 'https://elsewhere.example' })).status,
    ).toBe(403);
    expect(await example.stop('SIGINT')).toBe(0);
    expect(example.out.at(-1)).toBe('Stopped.');
  });
});
