/**
 * `rxamqp/angular` against RabbitMQ through rxamqp's relay (ws:// to TCP), as a browser application
 * connects: consume and publish round trips, the credentials provider asked before each attempt
 * (again when the relay restarts), and the relay's connection gone once the injector is destroyed.
 * Node 20 has no global WebSocket: there the service gets `ws` through `webSocketConnector`; on Node
 * 22+ the universal entry's default (the global WebSocket, as in a browser) is used.
 *
 * Needs a broker (see test/support/broker.ts): without one it fails, saying how to get one.
 */
import type { EnvironmentInjector } from '@angular/core';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import WebSocket from 'ws';
import { provideRxAmqp, RxAmqp, type RxAmqpConfig } from '../../src/angular/index.js';
import { type WebSocketConstructor, webSocketConnector } from '../../src/index.js';
import { type Relay, startRelay } from '../../src/relay/index.js';
import { type BrokerEndpoint, brokerEndpoint, withBrokerChannel } from '../support/broker.js';
import { environment, until } from './support.js';

const QUEUE = `rxamqp.angular.relay.${process.pid}.${Date.now().toString(36)}`;
const hasGlobalWebSocket = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function';

let endpoint: BrokerEndpoint;
let relay: Relay;
let injector: EnvironmentInjector | undefined;

function relayOptions(port: number) {
  return { host: '127.0.0.1', port, broker: `amqp://${endpoint.host}:${endpoint.port}` };
}

beforeAll(async () => {
  endpoint = await brokerEndpoint();
  relay = await startRelay(relayOptions(0));
});

afterAll(async () => {
  if (injector !== undefined && !injector.destroyed) injector.destroy();
  await relay.close();
  await withBrokerChannel((ch) => lastValueFrom(ch.queueDelete(QUEUE), { defaultValue: undefined }));
});

it(`consumes and publishes through the relay (${hasGlobalWebSocket ? 'the global WebSocket' : 'ws'}), recovers when it restarts, closes with the injector`, async () => {
  const port = relay.address!.port;
  let asked = 0;
  const config: RxAmqpConfig = {
    url: `ws://127.0.0.1:${port}/`,
    vhost: endpoint.vhost,
    name: 'rxamqp-angular-relay-test',
    credentials: () => {
      asked += 1;
      return { username: endpoint.username, password: endpoint.password };
    },
    recovery: { reconnect: { backoff: { initialDelay: 50, maxDelay: 500 } } },
    ...(hasGlobalWebSocket
      ? {}
      : { transport: webSocketConnector({ WebSocket: WebSocket as unknown as WebSocketConstructor }) }),
  };
  const env = environment([provideRxAmqp(config)]);
  injector = env.injector;
  const amqp = injector.get(RxAmqp);
  await until(() => amqp.state().status === 'CONNECTED', 10_000, 'CONNECTED through the relay');
  expect(relay.connections).toBe(1);
  expect(asked).toBe(1);

  const inbox = amqp.consume({ name: QUEUE, durable: true }, { autoAck: true, prefetch: 20 });
  const first = firstValueFrom(inbox.pipe(take(50), toArray()));
  const outcomes = await Promise.all(
    Array.from({ length: 50 }, (_, i) => lastValueFrom(amqp.publishJson('', QUEUE, { i }))),
  );
  expect(outcomes.every((o) => o.status === 'acked')).toBe(true);
  expect((await first).map((d) => d.json<{ i: number }>().i)).toEqual(
    Array.from({ length: 50 }, (_, i) => i),
  );

  // The relay restarts on the same port: the service reconnects (asking for credentials again) and
  // its consumer resumes.
  const seen: string[] = [];
  const live = inbox.subscribe((d) => seen.push(d.text()));
  await relay.close();
  await until(() => amqp.state().status === 'RECONNECTING', 5000, 'RECONNECTING');
  const held = lastValueFrom(amqp.publish('', QUEUE, 'published while the relay was down'));
  relay = await startRelay(relayOptions(port));
  await until(() => amqp.state().status === 'CONNECTED', 10_000, 'CONNECTED again');
  expect(asked).toBeGreaterThanOrEqual(2);
  await expect(held).resolves.toEqual(expect.objectContaining({ status: 'acked' }));
  await until(() => seen.includes('published while the relay was down'), 5000, 'the held message consumed');
  live.unsubscribe();

  injector.destroy();
  await until(() => amqp.state().status === 'CLOSED', 5000, 'CLOSED');
  await until(() => relay.connections === 0, 5000, "the relay's connection closed");
  expect(env.errors.errors).toEqual([]);
}, 60_000);
