/**
 * attachRelay in an application's own HTTP server: the server's pages are still served, the relay takes
 * the upgrades on its path, another WebSocket endpoint on the same server keeps its own upgrades, and
 * close() detaches the relay and leaves the server running.
 */
import { once } from 'node:events';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ConfigurationError } from '../../src/errors.js';
import { attachRelay } from '../../src/relay/index.js';
import { openClient, refusedUpgrade } from './support/clients.js';
import { type FakeBroker, startFakeBroker } from './support/fake-broker.js';

let broker: FakeBroker;
let server: Server;
let port: number;

beforeEach(async () => {
  broker = await startFakeBroker();
  server = createServer((request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.end(`page ${request.url}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await broker.close();
});

function fetchPage(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(`${response.statusCode} ${body}`));
    }).on('error', reject);
  });
}

describe('attachRelay', () => {
  it('relays on its path, next to the pages and another WebSocket endpoint of the same server', async () => {
    // The application's own WebSocket endpoint, on /echo.
    const echo = new WebSocketServer({ noServer: true });
    echo.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    server.on('upgrade', (request, socket, head) => {
      if (request.url !== '/echo') return;
      echo.handleUpgrade(request, socket, head, (ws) => echo.emit('connection', ws, request));
    });
    const relay = attachRelay(server, { broker: broker.url, path: '/amqp' });
    expect(relay.address).toBeUndefined();

    expect(await fetchPage('/index.html')).toBe('200 page /index.html');
    const echoed = await openClient(`ws://127.0.0.1:${port}/echo`);
    echoed.send(Buffer.from('ping'));
    expect((await echoed.waitForBytes(4)).toString()).toBe('ping');

    const client = await openClient(`ws://127.0.0.1:${port}/amqp`);
    const connection = await broker.nextConnection();
    client.send(Buffer.from('to the broker'));
    expect((await connection.waitForBytes(13)).toString()).toBe('to the broker');
    expect(relay.connections).toBe(1);
    expect(broker.connections).toHaveLength(1);

    await relay.close();
    expect(await client.closed).toEqual({ code: 1001, reason: 'relay shutting down' });
    // The server and its other endpoint carry on.
    expect(server.listening).toBe(true);
    expect(await fetchPage('/after')).toBe('200 page /after');
    echoed.send(Buffer.from('again'));
    expect((await echoed.waitForBytes(9)).toString()).toBe('pingagain');
    await echoed.close();
    echo.close();
  });

  it('answers 404 for another path when no other upgrade listener could take it', async () => {
    const relay = attachRelay(server, { broker: broker.url, path: '/amqp' });
    expect((await refusedUpgrade(`ws://127.0.0.1:${port}/elsewhere`)).status).toBe(404);
    await relay.close();
  });

  it('takes every path when none is given, and refuses listening options', async () => {
    const relay = attachRelay(server, { broker: broker.url });
    await (await openClient(`ws://127.0.0.1:${port}/any/where`)).close();
    await relay.close();
    expect(() => attachRelay(server, { port: 1 } as never)).toThrow(ConfigurationError);
    expect(() => attachRelay({} as never)).toThrow('attachRelay needs a node:http or node:https server');
    expect(server.listenerCount('upgrade')).toBe(0);
  });
});
