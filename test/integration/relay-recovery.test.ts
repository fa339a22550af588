/**
 * Recovery through the WebSocket relay, against RabbitMQ: a recovering consumer connected over `ws://`
 * (Node's WebSocket transport, the `ws` package) to `rxamqp/relay` resumes consuming when the relay
 * restarts on the same port under it, and when the broker force-closes its connection
 * (`rabbitmqctl close_connection`, which the relay passes on as a WebSocket close). Every message
 * published meanwhile is received, and a publisher holds what it sends while the relay is down.
 */
import { randomUUID } from 'node:crypto';
import { lastValueFrom, type Subscription, switchMap } from 'rxjs';
import { type ConnectionState, connect, createPublisher, type Delivery } from '../../src/node.js';
import { type Relay, startRelay } from '../../src/relay/index.js';
import { brokerEndpoint, withBrokerChannel } from '../support/broker.js';
import { closeConnectionsNamed, connectionPids, eventually } from '../support/rabbitmqctl.js';

const FAST = { reconnect: { delays: [50, 100, 200, 400] } } as const;

function uniqueName(what: string): string {
  return `rxamqp-test-relay-${what}-${randomUUID().slice(0, 8)}`;
}

/** Publishes `bodies` to `queue` with confirms, on a connection of its own. */
function publishTo(queue: string, bodies: string[]): Promise<void> {
  return withBrokerChannel(async (ch) => {
    await lastValueFrom(ch.confirmSelect());
    for (const body of bodies) await lastValueFrom(ch.publish('', queue, body));
  });
}

function deleteQueue(queue: string): Promise<unknown> {
  return withBrokerChannel((ch) => lastValueFrom(ch.queueDelete(queue)));
}

describe('recovery through the relay (RabbitMQ)', () => {
  let relay: Relay | undefined;
  let broker = '';
  let credentials = '';
  const subscriptions: Subscription[] = [];
  const queues: string[] = [];

  beforeAll(async () => {
    const endpoint = await brokerEndpoint();
    broker = `amqp://${endpoint.host}:${endpoint.port}`;
    credentials = `${encodeURIComponent(endpoint.username)}:${encodeURIComponent(endpoint.password)}`;
  });

  afterEach(async () => {
    for (const s of subscriptions.splice(0)) s.unsubscribe();
    await relay?.close();
    relay = undefined;
    for (const q of queues.splice(0)) await deleteQueue(q);
  });

  /** A recovering consumer of a fresh durable queue through the relay; collects bodies and states. */
  async function consumeThroughRelay(name: string) {
    relay = await startRelay({ port: 0, broker });
    const port = relay.address!.port;
    const queue = uniqueName('q');
    queues.push(queue);
    const connection$ = connect(`ws://${credentials}@127.0.0.1:${port}/`, { name, recovery: FAST });
    const states: ConnectionState['status'][] = [];
    const received: string[] = [];
    const errors: unknown[] = [];
    subscriptions.push(connection$.state$.subscribe((s) => states.push(s.status)));
    subscriptions.push(
      connection$
        .pipe(
          switchMap((conn) => conn.channel()),
          switchMap((ch) =>
            ch.queueDeclare(queue, { durable: true }).pipe(switchMap(() => ch.consume(queue))),
          ),
        )
        .subscribe({
          next: (d: Delivery) => {
            received.push(d.text());
            d.ack();
          },
          error: (e: unknown) => errors.push(e),
        }),
    );
    await eventually(() => states.includes('CONNECTED'));
    return { connection$, port, queue, states, received, errors };
  }

  it('resumes consuming when the relay restarts on the same port', async () => {
    const { port, queue, states, received, errors } = await consumeThroughRelay(uniqueName('restart'));
    await publishTo(queue, ['before']);
    expect(await eventually(() => received.includes('before'))).toBe(true);

    await relay!.close();
    expect(await eventually(() => states.at(-1) === 'RECONNECTING')).toBe(true);
    await publishTo(queue, ['while-down']);
    relay = await startRelay({ port, broker });
    expect(await eventually(() => received.includes('while-down'))).toBe(true);
    await publishTo(queue, ['after']);
    expect(await eventually(() => received.includes('after'))).toBe(true);

    // 'before' may come twice: its ack can be lost with the relay (at-least-once); nothing is lost.
    expect([...new Set(received)]).toEqual(['before', 'while-down', 'after']);
    expect(received.filter((body) => body !== 'before')).toEqual(['while-down', 'after']);
    expect(states.filter((s) => s === 'CONNECTED')).toHaveLength(2);
    expect(errors).toEqual([]);
  });

  it('resumes consuming when the broker force-closes the connection behind the relay', async () => {
    const name = uniqueName('forced');
    const { queue, states, received, errors } = await consumeThroughRelay(name);
    await publishTo(queue, ['one']);
    expect(await eventually(() => received.includes('one'))).toBe(true);

    expect((await connectionPids(name)).length).toBe(1);
    await closeConnectionsNamed(name, 'relay recovery test');
    expect(await eventually(() => states.filter((s) => s === 'CONNECTED').length === 2)).toBe(true);
    await publishTo(queue, ['two']);
    expect(await eventually(() => received.includes('two'))).toBe(true);

    expect([...new Set(received)]).toEqual(['one', 'two']);
    expect(received.filter((body) => body !== 'one')).toEqual(['two']);
    expect(errors).toEqual([]);
    expect(relay!.connections).toBe(1); // the dead WebSocket is gone, the new one is open
  });

  it('holds what a publisher sends while the relay is down and sends it after the reconnect', async () => {
    const { connection$, port, queue, states, received } = await consumeThroughRelay(uniqueName('publisher'));
    const publisher = createPublisher(connection$, { confirm: true, whileDisconnected: 'buffer' });
    await relay!.close();
    expect(await eventually(() => states.at(-1) === 'RECONNECTING')).toBe(true);
    const outcome = lastValueFrom(publisher.publish('', queue, 'held'));
    relay = await startRelay({ port, broker });
    expect((await outcome).status).toBe('acked');
    expect(await eventually(() => received.includes('held'))).toBe(true);
    await lastValueFrom(publisher.close(), { defaultValue: undefined });
  });
});
