/**
 * `rxamqp/otel`'s lifecycle metrics, fed with the events a connection reports (no broker): state
 * changes by state, reconnects (a CONNECTED after an earlier one), and blocked time (from
 * connection.blocked to unblocked, or to the loss of the connection).
 */
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { ConnectionState, DiagnosticEvent, Instrumentation } from '../../src/node.js';
import { openTelemetry, shortDestination } from '../../src/otel/index.js';
import { points, TestReader } from '../support/otel.js';

function setUp(): { telemetry: Instrumentation; reader: TestReader } {
  const reader = new TestReader();
  const telemetry = openTelemetry({
    tracing: false,
    meterProvider: new MeterProvider({ readers: [reader] }),
  });
  return { telemetry, reader };
}

/** One lifetime number per connection name in these tests (as when names are unique). */
const lifetimeOf = (connection: string): number => {
  const m = /(\d+)$/.exec(connection);
  return m === null ? connection.length + 1000 : Number(m[1]);
};

const state = (
  connection: string,
  s: ConnectionState,
  lifetime = lifetimeOf(connection),
): DiagnosticEvent => ({
  type: 'connection.state',
  connection,
  lifetime,
  time: 0,
  state: s,
});

describe('openTelemetry() lifecycle metrics', () => {
  it('counts state changes by state and reconnects per connection', async () => {
    const { telemetry, reader } = setUp();
    for (const status of [
      'CONNECTING',
      'CONNECTED',
      'RECONNECTING',
      'CONNECTING',
      'CONNECTED',
      'CLOSING',
      'CLOSED',
    ] as const) {
      telemetry.event!(state('a', { status }));
    }
    telemetry.event!(state('b', { status: 'CONNECTING' }));
    telemetry.event!(state('b', { status: 'CONNECTED' }));
    const { resourceMetrics } = await reader.collect();
    const changes = points(resourceMetrics, 'rxamqp.connection.state_changes');
    const of = (connection: string, s: string) =>
      changes.find(
        (p) =>
          p.attributes['rxamqp.connection'] === connection && p.attributes['rxamqp.connection.state'] === s,
      )?.value;
    expect(of('a', 'CONNECTING')).toBe(2);
    expect(of('a', 'CONNECTED')).toBe(2);
    expect(of('a', 'RECONNECTING')).toBe(1);
    expect(of('a', 'CLOSED')).toBe(1);
    expect(of('b', 'CONNECTED')).toBe(1);
    const reconnects = points(resourceMetrics, 'rxamqp.connection.reconnects');
    expect(reconnects.map((p) => [p.attributes['rxamqp.connection'], p.value])).toEqual([['a', 1]]);
  });

  it('records blocked time, ended by unblocked or by the loss of the connection', async () => {
    const { telemetry, reader } = setUp();
    let clock = 1000;
    const spy = jest.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      telemetry.event!(state('a', { status: 'CONNECTED' }));
      telemetry.event!({
        type: 'connection.blocked',
        connection: 'a',
        lifetime: lifetimeOf('a'),
        time: 0,
        reason: 'low on memory',
      });
      clock += 1500;
      telemetry.event!({ type: 'connection.unblocked', connection: 'a', lifetime: lifetimeOf('a'), time: 0 });
      telemetry.event!({
        type: 'connection.blocked',
        connection: 'a',
        lifetime: lifetimeOf('a'),
        time: 0,
        reason: 'low on disk',
      });
      // A second blocked while blocked does not restart the clock.
      clock += 250;
      telemetry.event!({
        type: 'connection.blocked',
        connection: 'a',
        lifetime: lifetimeOf('a'),
        time: 0,
        reason: 'low on disk',
      });
      clock += 250;
      telemetry.event!(state('a', { status: 'RECONNECTING' }));
      // Unblocked after the loss: already recorded.
      telemetry.event!({ type: 'connection.unblocked', connection: 'a', lifetime: lifetimeOf('a'), time: 0 });
    } finally {
      spy.mockRestore();
    }
    const { resourceMetrics } = await reader.collect();
    const [blocked] = points(resourceMetrics, 'rxamqp.connection.blocked.duration');
    const value = blocked!.value as { count: number; sum: number };
    expect(value.count).toBe(2);
    expect(value.sum).toBeCloseTo(2.0, 5);
  });

  it('calls nothing for a connection when both signals are off', () => {
    const telemetry = openTelemetry({ tracing: false, metrics: false });
    expect(telemetry.publish).toBeUndefined();
    expect(telemetry.deliver).toBeUndefined();
    expect(telemetry.event).toBeUndefined();
  });

  it('labels only named connections (unnamed ones, rxamqp-N, would add series forever)', async () => {
    const { telemetry, reader } = setUp();
    for (let n = 1; n <= 3; n++) telemetry.event!(state(`rxamqp-${n}`, { status: 'CONNECTED' }));
    telemetry.event!(state('orders', { status: 'CONNECTED' }));
    telemetry.event!({ type: 'channel.open', connection: 'rxamqp-9', lifetime: 9, time: 0, channel: 1 });
    const { resourceMetrics } = await reader.collect();
    const changes = points(resourceMetrics, 'rxamqp.connection.state_changes');
    expect(changes.map((p) => [p.attributes['rxamqp.connection'], p.value])).toEqual([
      [undefined, 3],
      ['orders', 1],
    ]);
  });
});

describe('openTelemetry() and connections that share a name', () => {
  it('counts each lifetime on its own: a second connection named alike is not a reconnect', async () => {
    const { telemetry, reader } = setUp();
    telemetry.event!(state('orders', { status: 'CONNECTED' }, 1));
    telemetry.event!(state('orders', { status: 'CONNECTED' }, 2));
    telemetry.event!({
      type: 'connection.blocked',
      connection: 'orders',
      lifetime: 1,
      time: 0,
      reason: 'memory',
    });
    // The other one closing does not end the first one's blocked time, nor forget it.
    telemetry.event!(state('orders', { status: 'CLOSED' }, 2));
    telemetry.event!(state('orders', { status: 'RECONNECTING' }, 1));
    telemetry.event!(state('orders', { status: 'CONNECTED' }, 1));
    const { resourceMetrics } = await reader.collect();
    expect(points(resourceMetrics, 'rxamqp.connection.reconnects').map((p) => p.value)).toEqual([1]);
    const [blocked] = points(resourceMetrics, 'rxamqp.connection.blocked.duration');
    expect((blocked!.value as { count: number }).count).toBe(1);
  });

  it('records durations in seconds, in buckets made for seconds', async () => {
    const { telemetry, reader } = setUp();
    let clock = 0;
    const spy = jest.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      telemetry.event!(state('a', { status: 'CONNECTED' }));
      telemetry.event!({
        type: 'connection.blocked',
        connection: 'a',
        lifetime: lifetimeOf('a'),
        time: 0,
        reason: 'm',
      });
      clock += 40;
      telemetry.event!({ type: 'connection.unblocked', connection: 'a', lifetime: lifetimeOf('a'), time: 0 });
    } finally {
      spy.mockRestore();
    }
    const { resourceMetrics } = await reader.collect();
    const [blocked] = points(resourceMetrics, 'rxamqp.connection.blocked.duration');
    const value = blocked!.value as { buckets: { boundaries: number[]; counts: number[] } };
    expect(value.buckets.boundaries.slice(0, 6)).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1]);
    // 0.04 s falls in (0.025, 0.05].
    expect(value.buckets.counts.slice(0, 5)).toEqual([0, 0, 0, 1, 0]);
  });
});

describe('shortDestination (span names and metric labels)', () => {
  it.each([
    ['orders', 'order.created.123', undefined, 'orders'],
    ['', 'jobs', undefined, 'jobs'],
    ['', '', undefined, 'amq.default'],
    ['', 'amq.gen-Xy12', undefined, 'amq.gen-*'],
    ['', 'amq.rabbitmq.reply-to.g1h2AA.abc', undefined, 'amq.rabbitmq.reply-to'],
    ['orders', 'order.created.123', 'billing', 'billing'],
    ['', 'jobs', 'jobs', 'jobs'],
    ['', 'x', 'amq.gen-Q7', 'amq.gen-*'],
  ])('(%j, %j, queue %j) is %j', (exchange, routingKey, queue, expected) => {
    expect(shortDestination(exchange, routingKey, queue)).toBe(expected);
  });
});
