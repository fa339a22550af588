/**
 * The telemetry seam against a scripted server, with a recording `Instrumentation` (no
 * OpenTelemetry): what publish and delivery probes are told and when, properties replaced on the
 * wire, settlements (one by one, `multiple`, `noAck`, lost with the channel), instrumentations that
 * throw, the operators running handlers in the delivery's context, the publisher keeping the ambient
 * context across a disconnection; then the `telemetry` option's checks and `rxamqp/otel`'s.
 */
import { asyncScheduler, firstValueFrom, lastValueFrom, observeOn, type Subscription, tap } from 'rxjs';
import { ackOnSuccess, answerRequests } from '../../operators/index.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import {
  type BasicProperties,
  type Channel,
  ChannelClosedError,
  ConfigurationError,
  type Connection,
  type ConnectOptions,
  connect,
  createPublisher,
  type Delivery,
  type DeliveryEnd,
  type DeliveryProbe,
  type DeliveryStart,
  type DiagnosticEvent,
  type Instrumentation,
  openConnection,
  type PublishOutcome,
  type PublishStart,
  setAmbientContext,
  withinDelivery,
} from '../../src/node.js';
import { destinationName, type OpenTelemetryOptions, openTelemetry } from '../../src/otel/index.js';
import type { Method } from '../../src/protocol/index.js';
import { ambientContext, attachProbe, probeOf } from '../../src/telemetry/instrumentation.js';
import { nodePlatform } from '../../src/transport/node.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';
import { until } from '../support/until.js';

let server: ScriptedServer | undefined;
let errors: jest.SpyInstance;

beforeEach(() => {
  errors = jest.spyOn(console, 'error').mockImplementation(() => {});
});

afterEach(async () => {
  errors.mockRestore();
  setAmbientContext(undefined);
  await server?.close();
  server = undefined;
});

// ---- the recording instrumentation ------------------------------------------------------------

interface PublishRecord {
  readonly start: PublishStart;
  readonly ends: { outcome: PublishOutcome | undefined; error: Error | undefined }[];
}

interface DeliveryRecord {
  readonly start: DeliveryStart;
  readonly ends: { how: DeliveryEnd; requeue: boolean; error: Error | undefined }[];
}

interface Recorder {
  readonly instrumentation: Instrumentation;
  readonly publishes: PublishRecord[];
  readonly deliveries: DeliveryRecord[];
  readonly events: DiagnosticEvent[];
  /** What happened, in order: `run <tag>`, `end <tag> <how>`, and what the test adds. */
  readonly log: string[];
  /** The delivery tag whose probe's `run` is executing now, if any. */
  readonly running: number | undefined;
}

/** An instrumentation that records everything; `properties` gives a publish probe's replacement. */
function recorder(properties?: (start: PublishStart) => BasicProperties | undefined): Recorder {
  const publishes: PublishRecord[] = [];
  const deliveries: DeliveryRecord[] = [];
  const events: DiagnosticEvent[] = [];
  const log: string[] = [];
  let running: number | undefined;
  const instrumentation: Instrumentation = {
    publish(start) {
      const record: PublishRecord = { start, ends: [] };
      publishes.push(record);
      return {
        properties: properties?.(start),
        end: (outcome, error) => {
          record.ends.push({ outcome, error });
        },
      };
    },
    deliver(start) {
      const record: DeliveryRecord = { start, ends: [] };
      deliveries.push(record);
      const tag = start.fields.deliveryTag;
      return {
        run<T>(fn: () => T): T {
          log.push(`run ${tag}`);
          const previous = running;
          running = tag;
          try {
            return fn();
          } finally {
            running = previous;
          }
        },
        end: (how, requeue, error) => {
          log.push(`end ${tag} ${how}`);
          record.ends.push({ how, requeue, error });
        },
      };
    },
    event(event) {
      events.push(event);
    },
  };
  return {
    instrumentation,
    publishes,
    deliveries,
    events,
    log,
    get running() {
      return running;
    },
  };
}

// ---- the server's side -------------------------------------------------------------------------

const CONSUMER_TAG = 'ctag-1';

/** Handshake, then opens channel 1. */
async function openChannel1(peer: ScriptedPeer): Promise<void> {
  await peer.handshake();
  await peer.expect('channel.open', { channel: 1 });
  peer.send(1, { name: 'channel.open-ok' });
}

/** Answers the basic.consume on channel 1 with CONSUMER_TAG. */
async function acceptConsume(peer: ScriptedPeer): Promise<void> {
  await peer.expect('basic.consume', { channel: 1 });
  peer.send(1, { name: 'basic.consume-ok', consumerTag: CONSUMER_TAG });
}

/** Delivers message `tag` (body `m<tag>`, messageId `m<tag>`) to CONSUMER_TAG on channel 1. */
function deliver(
  peer: ScriptedPeer,
  tag: number,
  properties: BasicProperties = { messageId: `m${tag}` },
): void {
  peer.sendContent(
    1,
    {
      name: 'basic.deliver',
      consumerTag: CONSUMER_TAG,
      deliveryTag: tag,
      redelivered: false,
      exchange: 'ex',
      routingKey: 'rk',
    },
    properties,
    Buffer.from(`m${tag}`),
  );
}

/** A method as a short line: `ack 3+`, `nack 2 true`, `reject 1 false`, or its name. */
function describeMethod(m: Method): string {
  if (m.name === 'basic.ack') return `ack ${m.deliveryTag}${m.multiple ? '+' : ''}`;
  if (m.name === 'basic.nack') return `nack ${m.deliveryTag}${m.multiple ? '+' : ''} ${m.requeue}`;
  if (m.name === 'basic.reject') return `reject ${m.deliveryTag} ${m.requeue}`;
  return m.name;
}

/**
 * Answers whatever the client does until it has closed the connection (cancel, channel.close,
 * connection.close); returns what it sent, described, publishes as `publish <routing key>`.
 */
async function serveUntilClosed(peer: ScriptedPeer): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const event = await peer.next();
    if (event.kind === 'heartbeat') continue;
    const m = event.method;
    if (m.name === 'basic.publish') {
      seen.push(`publish ${m.routingKey}`);
      continue;
    }
    seen.push(describeMethod(m));
    if (m.name === 'basic.cancel')
      peer.send(event.channel, { name: 'basic.cancel-ok', consumerTag: m.consumerTag });
    else if (m.name === 'channel.close') peer.send(event.channel, { name: 'channel.close-ok' });
    else if (m.name === 'connection.close') {
      peer.send(0, { name: 'connection.close-ok' });
      return seen;
    }
  }
}

/** The delivery tags the acks in `seen` cover (`ack 3+` covers 1 to 3), sorted. */
function ackedTags(seen: readonly string[]): number[] {
  const tags = new Set<number>();
  for (const line of seen) {
    const match = /^ack (\d+)(\+?)$/.exec(line);
    if (match === null) continue;
    const tag = Number(match[1]);
    if (match[2] === '+') for (let t = 1; t <= tag; t++) tags.add(t);
    else tags.add(tag);
  }
  return [...tags].sort((a, b) => a - b);
}

// ---- the client's side -------------------------------------------------------------------------

async function open(extra: ConnectOptions = {}): Promise<{ connection: Connection; channel: Channel }> {
  const connection = await openConnection({
    hostname: '127.0.0.1',
    port: server!.port,
    connectionTimeout: 3000,
    ackDelay: 0,
    ...extra,
  });
  return { connection, channel: await connection.openChannel() };
}

async function closeAll(connection: Connection, channel?: Channel): Promise<void> {
  if (channel?.isOpen === true) await lastValueFrom(channel.close());
  await lastValueFrom(connection.close());
}

/** Consumes `queue`, collecting deliveries; `onDelivery` runs in the subscriber's `next`. */
function collect(
  channel: Channel,
  options: { noAck?: boolean } = {},
  onDelivery: (d: Delivery) => void = () => {},
): { got: Delivery[]; errors: unknown[]; subscription: Subscription } {
  const got: Delivery[] = [];
  const failures: unknown[] = [];
  const subscription = channel.consume('q', options).subscribe({
    next: (d) => {
      got.push(d);
      onDelivery(d);
    },
    error: (e: unknown) => failures.push(e),
  });
  return { got, errors: failures, subscription };
}

const peerOf = () => ({ address: '127.0.0.1', port: server!.port });

// ---- publish probes ----------------------------------------------------------------------------

describe('publish probes', () => {
  it('are told of the publish, replace its properties on the wire, and end once with sent', async () => {
    let received: { properties: BasicProperties; body: string; mandatory: boolean } | undefined;
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        const content = await peer.expectContent('basic.publish', { channel: 1 });
        received = {
          properties: content.properties,
          body: content.body.toString(),
          mandatory: content.method.mandatory,
        };
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder((start) => ({
      ...start.properties,
      headers: { ...start.properties?.headers, traceparent: '00-trace-span-01' },
    }));
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const given: BasicProperties = { messageId: 'm-1', headers: { app: 'x' } };
    const outcome = await lastValueFrom(channel.publish('ex', 'rk', 'héllo', given, { mandatory: true }));
    expect(outcome).toEqual({ status: 'sent' });
    await closeAll(connection, channel);
    await server.done();

    expect(rec.publishes).toHaveLength(1);
    const [record] = rec.publishes as [PublishRecord];
    expect(record.start).toEqual({
      exchange: 'ex',
      routingKey: 'rk',
      properties: { messageId: 'm-1', headers: { app: 'x' } },
      bodySize: 6, // bytes, not characters
      mandatory: true,
      confirmed: false,
      peer: peerOf(),
    });
    // The probe was given the caller's properties, unchanged; the wire has the probe's.
    expect(record.start.properties).toBe(given);
    expect(given).toEqual({ messageId: 'm-1', headers: { app: 'x' } });
    expect(received).toEqual({
      properties: { messageId: 'm-1', headers: { app: 'x', traceparent: '00-trace-span-01' } },
      body: 'héllo',
      mandatory: true,
    });
    expect(record.ends).toEqual([{ outcome: { status: 'sent' }, error: undefined }]);
    expect(rest).toEqual(['channel.close', 'connection.close']);
  });

  it('publishes the given properties when the probe returns none', async () => {
    let received: BasicProperties | undefined;
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        received = (await peer.expectContent('basic.publish')).properties;
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    await lastValueFrom(channel.publish('', 'q', 'x', { correlationId: 'c-1' }));
    await closeAll(connection, channel);
    await server.done();
    expect(received).toEqual({ correlationId: 'c-1' });
    expect(rec.publishes[0]?.ends).toEqual([{ outcome: { status: 'sent' }, error: undefined }]);
  });

  it('in confirm mode end with the acked, nacked and returned outcomes', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await peer.expect('confirm.select', { channel: 1 });
        peer.send(1, { name: 'confirm.select-ok' });
        for (let i = 0; i < 3; i++) await peer.expectContent('basic.publish');
        peer.send(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
        peer.send(1, { name: 'basic.nack', deliveryTag: 2, multiple: false, requeue: false });
        peer.sendContent(
          1,
          { name: 'basic.return', replyCode: 312, replyText: 'NO_ROUTE', exchange: 'ex', routingKey: 'c' },
          {},
          Buffer.from('c'),
        );
        peer.send(1, { name: 'basic.ack', deliveryTag: 3, multiple: false });
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    await lastValueFrom(channel.confirmSelect());
    const outcomes = await Promise.all([
      lastValueFrom(channel.publish('ex', 'a', 'a')),
      lastValueFrom(channel.publish('ex', 'b', 'b')),
      lastValueFrom(channel.publish('ex', 'c', 'c', {}, { mandatory: true })),
    ]);
    await closeAll(connection, channel);
    await server.done();

    expect(outcomes.map((o) => o.status)).toEqual(['acked', 'nacked', 'returned']);
    expect(rec.publishes.map((p) => [p.start.routingKey, p.start.confirmed, p.start.mandatory])).toEqual([
      ['a', true, false],
      ['b', true, false],
      ['c', true, true],
    ]);
    // Each probe heard exactly the outcome its publish emitted, once.
    rec.publishes.forEach((p, i) => {
      expect(p.ends).toEqual([{ outcome: outcomes[i], error: undefined }]);
    });
    expect(rec.publishes[2]?.ends[0]?.outcome).toMatchObject({
      status: 'returned',
      seq: 3,
      returned: { replyCode: 312, routingKey: 'c' },
    });
  });

  it('end with the error when the channel closes before the confirm', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await peer.expect('confirm.select', { channel: 1 });
        peer.send(1, { name: 'confirm.select-ok' });
        await peer.expectContent('basic.publish');
        peer.send(1, {
          name: 'channel.close',
          replyCode: 406,
          replyText: 'PRECONDITION_FAILED - test',
          classId: 60,
          methodId: 40,
        });
        await peer.expect('channel.close-ok', { channel: 1 });
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    await lastValueFrom(channel.confirmSelect());
    const failure = await lastValueFrom(channel.publish('ex', 'rk', 'x')).catch((e: unknown) => e);
    await closeAll(connection);
    await server.done();

    expect(failure).toBeInstanceOf(ChannelClosedError);
    expect(rec.publishes).toHaveLength(1);
    expect(rec.publishes[0]!.ends).toEqual([{ outcome: undefined, error: failure }]);
  });

  it('end with an error when a waiting publish is unsubscribed before it is written', async () => {
    let unblock!: () => void;
    const unblocked = new Promise<void>((resolve) => (unblock = resolve));
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        peer.send(0, { name: 'connection.blocked', reason: 'low on memory' });
        await unblocked;
        peer.send(0, { name: 'connection.unblocked' });
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    await until(() => rec.events.some((e) => e.type === 'connection.blocked'), 5000, 'connection.blocked');
    const outcomes: unknown[] = [];
    const subscription = channel.publish('ex', 'waiting', 'x').subscribe({
      next: (o) => outcomes.push(o),
      error: (e: unknown) => outcomes.push(e),
    });
    // Told before it waits, not ended while it waits.
    expect(rec.publishes).toHaveLength(1);
    expect(rec.publishes[0]!.ends).toEqual([]);
    subscription.unsubscribe();
    expect(rec.publishes[0]!.ends).toHaveLength(1);
    const [end] = rec.publishes[0]!.ends;
    expect(end!.outcome).toBeUndefined();
    expect(end!.error).toBeInstanceOf(Error);
    expect(end!.error!.message).toMatch(/dropped before it was written/);
    // Once unblocked, the dropped publish is not written, and its probe is not ended again.
    unblock();
    await until(
      () => rec.events.some((e) => e.type === 'connection.unblocked'),
      5000,
      'connection.unblocked',
    );
    await lastValueFrom(channel.publish('ex', 'after', 'y'));
    await closeAll(connection, channel);
    await server.done();
    expect(rest).toEqual(['publish after', 'channel.close', 'connection.close']);
    expect(outcomes).toEqual([]);
    expect(rec.publishes.map((p) => [p.start.routingKey, p.ends.length])).toEqual([
      ['waiting', 1],
      ['after', 1],
    ]);
  });
});

// ---- delivery probes ---------------------------------------------------------------------------

describe('delivery probes', () => {
  it('are told of a consumer delivery, hand it over inside run, and end with its settlement', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        for (const tag of [1, 2, 3, 4]) deliver(peer, tag);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const insideRun: (number | undefined)[] = [];
    const { got } = collect(channel, {}, (d) => {
      insideRun.push(rec.running);
      rec.log.push(`next ${d.fields.deliveryTag}`);
    });
    await until(() => got.length === 4, 5000, 'four deliveries');
    // Each subscriber ran inside its own delivery's probe.run, and nothing ended yet.
    expect(insideRun).toEqual([1, 2, 3, 4]);
    expect(rec.running).toBeUndefined();
    expect(rec.log).toEqual(['run 1', 'next 1', 'run 2', 'next 2', 'run 3', 'next 3', 'run 4', 'next 4']);
    expect(rec.deliveries.map((d) => d.ends)).toEqual([[], [], [], []]);
    expect(rec.deliveries[0]!.start).toEqual({
      queue: 'q',
      fields: {
        deliveryTag: 1,
        redelivered: false,
        exchange: 'ex',
        routingKey: 'rk',
        consumerTag: CONSUMER_TAG,
      },
      properties: { messageId: 'm1' },
      bodySize: 2,
      noAck: false,
      pulled: false,
      peer: peerOf(),
    });
    expect(got.every((d) => probeOf(d) !== undefined)).toBe(true);

    const [d1, d2, d3] = got as [Delivery, Delivery, Delivery, Delivery];
    expect(d1.ack()).toBe(true);
    expect(d2.nack({ requeue: true })).toBe(true);
    expect(d3.reject({ requeue: false })).toBe(true);
    expect(d1.ack()).toBe(false); // already settled: no second end
    expect(rec.deliveries.map((d) => d.ends)).toEqual([
      [{ how: 'ack', requeue: false, error: undefined }],
      [{ how: 'nack', requeue: true, error: undefined }],
      [{ how: 'reject', requeue: false, error: undefined }],
      [],
    ]);
    got[3]!.nack({ requeue: false });
    expect(rec.deliveries[3]!.ends).toEqual([{ how: 'nack', requeue: false, error: undefined }]);
    await closeAll(connection, channel);
    await server.done();
    expect([...rest].sort()).toEqual(
      ['ack 1', 'nack 2 true', 'reject 3 false', 'nack 4 false', 'channel.close', 'connection.close'].sort(),
    );
    // Nothing settled was ended again when the channel closed.
    expect(rec.deliveries.map((d) => d.ends.length)).toEqual([1, 1, 1, 1]);
  });

  it('end every earlier open probe of the channel on a multiple settlement, and not later ones', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        for (const tag of [1, 2, 3, 4, 5]) deliver(peer, tag);
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const { got } = collect(channel);
    await until(() => got.length === 5, 5000, 'five deliveries');
    const [d1, , d3, , d5] = got as [Delivery, Delivery, Delivery, Delivery, Delivery];
    d1.reject({ requeue: true });
    d3.ack({ multiple: true });
    const hows = () => rec.deliveries.map((d) => d.ends.map((e) => `${e.how}${e.requeue ? ' requeue' : ''}`));
    // 1 ended by its own reject; 2 and 3 by the multiple ack; 4 and 5 still open.
    expect(hows()).toEqual([['reject requeue'], ['ack'], ['ack'], [], []]);
    d5.nack({ multiple: true, requeue: true });
    expect(hows()).toEqual([['reject requeue'], ['ack'], ['ack'], ['nack requeue'], ['nack requeue']]);
    await closeAll(connection, channel);
    await server.done();
    expect(hows()).toEqual([['reject requeue'], ['ack'], ['ack'], ['nack requeue'], ['nack requeue']]);
  });

  it("end noAck deliveries with 'auto' once their subscribers have had them", async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        deliver(peer, 2);
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const { got } = collect(channel, { noAck: true }, (d) => {
      rec.log.push(`next ${d.fields.deliveryTag}`);
    });
    await until(() => got.length === 2, 5000, 'two deliveries');
    expect(rec.log).toEqual(['run 1', 'next 1', 'end 1 auto', 'run 2', 'next 2', 'end 2 auto']);
    expect(rec.deliveries.map((d) => [d.start.noAck, d.start.pulled])).toEqual([
      [true, false],
      [true, false],
    ]);
    expect(got[0]!.ack()).toBe(false);
    await closeAll(connection, channel);
    await server.done();
    expect(rec.deliveries.map((d) => d.ends)).toEqual([
      [{ how: 'auto', requeue: false, error: undefined }],
      [{ how: 'auto', requeue: false, error: undefined }],
    ]);
  });

  it("end unsettled deliveries 'lost' with the error when the broker closes the channel", async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        for (const tag of [1, 2, 3]) deliver(peer, tag);
        await peer.expect('basic.ack', { channel: 1 });
        peer.send(1, {
          name: 'channel.close',
          replyCode: 406,
          replyText: 'PRECONDITION_FAILED - test',
          classId: 60,
          methodId: 80,
        });
        await peer.expect('channel.close-ok', { channel: 1 });
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const consumed = collect(channel);
    await until(() => consumed.got.length === 3, 5000, 'three deliveries');
    consumed.got[0]!.ack();
    await until(() => !channel.isOpen, 5000, 'the channel to close');
    await closeAll(connection);
    await server.done();
    expect(consumed.errors).toHaveLength(1);
    const error = consumed.errors[0];
    expect(error).toBeInstanceOf(ChannelClosedError);
    expect(rec.deliveries.map((d) => d.ends)).toEqual([
      [{ how: 'ack', requeue: false, error: undefined }],
      [{ how: 'lost', requeue: false, error }],
      [{ how: 'lost', requeue: false, error }],
    ]);
    // Settling a lost delivery sends nothing and ends nothing.
    expect(consumed.got[1]!.ack()).toBe(false);
    expect(rec.deliveries[1]!.ends).toHaveLength(1);
  });

  it("end unsettled deliveries 'lost' with an error when the client closes the channel", async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const { got } = collect(channel);
    await until(() => got.length === 1, 5000, 'a delivery');
    await closeAll(connection, channel);
    await server.done();
    expect(rec.deliveries).toHaveLength(1);
    const ends = rec.deliveries[0]!.ends;
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ how: 'lost', requeue: false });
    expect(ends[0]!.error).toBeInstanceOf(Error);
  });

  it('are told of channel.get deliveries as pulled, and end them like the others', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        const first = await peer.expect('basic.get', { channel: 1 });
        if (first.noAck) throw new Error('expected a basic.get without noAck first');
        peer.sendContent(
          1,
          {
            name: 'basic.get-ok',
            deliveryTag: 1,
            redelivered: true,
            exchange: 'ex',
            routingKey: 'rk',
            messageCount: 4,
          },
          { contentType: 'text/plain' },
          Buffer.from('got'),
        );
        await peer.expect('basic.ack', { channel: 1 });
        const second = await peer.expect('basic.get', { channel: 1 });
        if (!second.noAck) throw new Error('expected a basic.get with noAck second');
        peer.sendContent(
          1,
          {
            name: 'basic.get-ok',
            deliveryTag: 2,
            redelivered: false,
            exchange: '',
            routingKey: 'q',
            messageCount: 3,
          },
          {},
          Buffer.from('auto'),
        );
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const insideRun: (number | undefined)[] = [];
    const got: Delivery[] = [];
    const take = (noAck: boolean) =>
      lastValueFrom(
        channel.get('q', { noAck }).pipe(
          tap((d) => {
            insideRun.push(rec.running);
            got.push(d);
          }),
        ),
      );
    await take(false);
    expect(rec.deliveries[0]!.start).toEqual({
      queue: 'q',
      fields: { deliveryTag: 1, redelivered: true, exchange: 'ex', routingKey: 'rk', messageCount: 4 },
      properties: { contentType: 'text/plain' },
      bodySize: 3,
      noAck: false,
      pulled: true,
      peer: peerOf(),
    });
    expect(rec.deliveries[0]!.ends).toEqual([]);
    got[0]!.ack();
    expect(rec.deliveries[0]!.ends).toEqual([{ how: 'ack', requeue: false, error: undefined }]);
    await take(true);
    expect(rec.deliveries[1]!.start).toMatchObject({ noAck: true, pulled: true, bodySize: 4 });
    expect(rec.deliveries[1]!.ends).toEqual([{ how: 'auto', requeue: false, error: undefined }]);
    expect(insideRun).toEqual([1, 2]);
    await closeAll(connection, channel);
    await server.done();
  });
});

// ---- instrumentations that throw ---------------------------------------------------------------

/** The console.error lines reporting an instrumentation's failure. */
const reports = (): string[] =>
  errors.mock.calls
    .map((args: unknown[]) => String(args[0]))
    .filter((l) => l.includes('telemetry instrumentation failed'));

describe('an instrumentation that throws', () => {
  it('in publish and event: publishing goes on, each failure reported once', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    let publishes = 0;
    let events = 0;
    const instrumentation: Instrumentation = {
      publish: () => {
        publishes++;
        throw new Error('publish boom');
      },
      event: () => {
        events++;
        throw new Error('event boom');
      },
    };
    const { connection, channel } = await open({ telemetry: instrumentation });
    const outcomes = await Promise.all(
      ['a', 'b', 'c'].map((k) => lastValueFrom(channel.publish('ex', k, k)).then((o) => o.status)),
    );
    await closeAll(connection, channel);
    await server.done();
    expect(outcomes).toEqual(['sent', 'sent', 'sent']);
    expect(rest).toEqual(['publish a', 'publish b', 'publish c', 'channel.close', 'connection.close']);
    expect(publishes).toBe(3);
    expect(events).toBeGreaterThanOrEqual(4); // states, channel.open, channel.close
    const lines = reports();
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.includes('publish boom'))).toBe(true);
    expect(lines.some((l) => l.includes('event boom'))).toBe(true);
  });

  it('in deliver: consuming and settling go on, reported once', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        deliver(peer, 2);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const instrumentation: Instrumentation = {
      deliver: () => {
        throw new Error('deliver boom');
      },
    };
    const { connection, channel } = await open({ telemetry: instrumentation });
    const { got } = collect(channel, {}, (d) => d.ack());
    await until(() => got.length === 2, 5000, 'two deliveries');
    await closeAll(connection, channel);
    await server.done();
    expect(got.map((d) => d.text())).toEqual(['m1', 'm2']);
    expect(got.map((d) => 'probe' in d)).toEqual([false, false]);
    expect(ackedTags(rest)).toEqual([1, 2]);
    expect(reports()).toEqual([expect.stringContaining('deliver boom')]);
  });

  it('in probe.end: outcomes and settlements go on, reported once for all probes', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await peer.expectContent('basic.publish');
        await peer.expectContent('basic.publish');
        await acceptConsume(peer);
        deliver(peer, 1);
        deliver(peer, 2);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    let ends = 0;
    // A fresh probe (and `end` closure) per message, as the documented example writes them.
    const instrumentation: Instrumentation = {
      publish: () => ({
        end: () => {
          ends++;
          throw new Error('publish end boom');
        },
      }),
      deliver: () => ({
        run: (fn) => fn(),
        end: () => {
          ends++;
          throw new Error('delivery end boom');
        },
      }),
    };
    const { connection, channel } = await open({ telemetry: instrumentation });
    const outcomes = await Promise.all(
      ['a', 'b'].map((k) => lastValueFrom(channel.publish('ex', k, k)).then((o) => o.status)),
    );
    const { got } = collect(channel, {}, (d) => d.ack());
    await until(() => got.length === 2, 5000, 'two deliveries');
    await closeAll(connection, channel);
    await server.done();
    expect(outcomes).toEqual(['sent', 'sent']);
    expect(got.map((d) => d.settled)).toEqual([true, true]);
    expect(ackedTags(rest)).toEqual([1, 2]);
    expect(rest.slice(-2)).toEqual(['channel.close', 'connection.close']);
    expect(ends).toBe(4);
    const lines = reports();
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.includes('publish end boom'))).toBe(true);
    expect(lines.some((l) => l.includes('delivery end boom'))).toBe(true);
  });

  it('in probe.run before calling fn: the message is still delivered, reported once', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        for (const tag of [1, 2, 3]) deliver(peer, tag);
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const ended: string[] = [];
    const instrumentation: Instrumentation = {
      deliver: (start): DeliveryProbe => ({
        run: () => {
          throw new Error('run boom');
        },
        end: (how) => {
          ended.push(`${start.fields.deliveryTag} ${how}`);
        },
      }),
    };
    const { connection, channel } = await open({ telemetry: instrumentation });
    const { got, errors: failures } = collect(channel, {}, (d) => d.ack());
    await until(() => got.length === 3, 5000, 'three deliveries');
    await closeAll(connection, channel);
    await server.done();
    expect(got.map((d) => d.text())).toEqual(['m1', 'm2', 'm3']);
    expect(failures).toEqual([]);
    expect(ended).toEqual(['1 ack', '2 ack', '3 ack']);
    expect(reports()).toEqual([expect.stringContaining('run boom')]);
  });

  it('in probe.run after calling fn: the message is delivered once', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const instrumentation: Instrumentation = {
      deliver: (): DeliveryProbe => ({
        run: (fn) => {
          fn();
          throw new Error('run after boom');
        },
        end: () => {},
      }),
    };
    const { connection, channel } = await open({ telemetry: instrumentation });
    const { got } = collect(channel, {}, (d) => d.ack());
    await until(() => got.length === 1, 5000, 'a delivery');
    await closeAll(connection, channel);
    await server.done();
    expect(got).toHaveLength(1);
    expect(reports()).toEqual([expect.stringContaining('run after boom')]);
  });
});

// ---- without the option ------------------------------------------------------------------------

interface Hooks {
  readonly wiring: { readonly traces: unknown };
  readonly core: { readonly settlements: unknown };
  readonly publishes: { readonly reporter: unknown };
}

describe('an instrumentation that returns malformed probes', () => {
  it('is reported and ignored: publishing, consuming, settling and closing go on', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        deliver(peer, 2);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    let deliveries = 0;
    const instrumentation = {
      publish: () => ({}),
      // A probe without run, then one without end.
      deliver: () => (deliveries++ === 0 ? { end: () => {} } : { run: (fn: () => unknown) => fn() }),
    } as unknown as Instrumentation;
    const { connection, channel } = await open({ telemetry: instrumentation });
    const { got, errors: failures } = collect(channel, {}, (d) => d.ack());
    await until(() => got.length === 2, 5000, 'two deliveries');
    const outcome = await lastValueFrom(channel.publish('', 'jobs', 'x'));
    expect(outcome).toEqual({ status: 'sent' });
    await closeAll(connection, channel);
    await server.done();
    expect(failures).toEqual([]);
    expect(got.map((d) => probeOf(d))).toEqual([undefined, undefined]);
    expect(rest).toContain('publish jobs');
    expect(ackedTags(rest)).toEqual([1, 2]);
    expect(reports()).toEqual([
      expect.stringContaining('deliver() returned a probe without run() and end() methods'),
      expect.stringContaining('publish() returned a probe without an end() method'),
    ]);
  });
});

describe('deliveries the broker takes back while the channel stays open', () => {
  it("end 'lost' on basic.recover-ok, and a later multiple ack does not end them again", async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        deliver(peer, 2);
        await peer.expect('basic.recover', { channel: 1 });
        peer.send(1, { name: 'basic.recover-ok' });
        deliver(peer, 3);
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const { got } = collect(channel);
    await until(() => got.length === 2, 5000, 'two deliveries');
    await lastValueFrom(channel.recover({ requeue: true }));
    await until(() => got.length === 3, 5000, 'the delivery after recover');
    got[2]!.ack({ multiple: true });
    await closeAll(connection, channel);
    await server.done();
    expect(rec.deliveries.map((d) => d.ends.map((e) => e.how))).toEqual([['lost'], ['lost'], ['ack']]);
    expect(rec.deliveries[0]!.ends[0]!.error?.message).toBe('redelivered after basic.recover');
  });

  it("end 'lost' when the broker cancels their consumer for a consumer timeout (RabbitMQ 4.3's form)", async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        await new Promise((r) => setTimeout(r, 20));
        // A nowait basic.cancel with the delivery unacked: the channel stays open.
        peer.send(1, { name: 'basic.cancel', consumerTag: CONSUMER_TAG, nowait: true });
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const { got, errors: failures } = collect(channel);
    await until(() => failures.length === 1, 5000, 'the consumer cancelled');
    expect(got).toHaveLength(1);
    expect(channel.isOpen).toBe(true);
    expect(rec.deliveries[0]!.ends.map((e) => e.how)).toEqual(['lost']);
    expect(rec.deliveries[0]!.ends[0]!.error?.message).toBe(
      'taken back by the broker when its consumer timed out',
    );
    // Acking it now (the broker ignores it) does not end its probe a second time.
    got[0]!.ack();
    await closeAll(connection, channel);
    await server.done();
    expect(rec.deliveries[0]!.ends).toHaveLength(1);
  });
});

describe('without an instrumentation', () => {
  it.each([
    ['no telemetry option', undefined],
    ['an instrumentation with only event', { event: () => {} } as Instrumentation],
  ])('sets no hook with %s: deliveries carry no probe', async (_, telemetry) => {
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        await peer.expect('basic.get', { channel: 1 });
        peer.sendContent(
          1,
          {
            name: 'basic.get-ok',
            deliveryTag: 2,
            redelivered: false,
            exchange: '',
            routingKey: 'q',
            messageCount: 0,
          },
          {},
          Buffer.from('g'),
        );
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const { connection, channel } = await open(telemetry === undefined ? {} : { telemetry });
    const hooks = channel as unknown as Hooks;
    expect(hooks.wiring.traces).toBeUndefined();
    expect(hooks.core.settlements).toBeUndefined();
    expect(hooks.publishes.reporter).toBeUndefined();
    const { got } = collect(channel);
    await until(() => got.length === 1, 5000, 'a delivery');
    const pulled = await firstValueFrom(channel.get('q'));
    expect('probe' in got[0]!).toBe(false);
    expect('probe' in pulled).toBe(false);
    expect(withinDelivery(got[0]!, () => 'direct')).toBe('direct');
    got[0]!.ack();
    pulled.ack();
    await closeAll(connection, channel);
    await server.done();
    expect(errors).not.toHaveBeenCalled();
  });

  it('withinDelivery calls fn directly for a message without a probe, and through run for one with', () => {
    const fn = jest.fn(() => 42);
    expect(withinDelivery({ body: new Uint8Array(0) }, fn)).toBe(42);
    expect(fn).toHaveBeenCalledTimes(1);
    const order: string[] = [];
    const probe: DeliveryProbe = {
      run: (inner) => {
        order.push('run');
        return inner();
      },
      end: () => {},
    };
    const message = { body: new Uint8Array(0) };
    attachProbe(message, probe);
    expect(
      withinDelivery(message, () => {
        order.push('fn');
        return 'x';
      }),
    ).toBe('x');
    expect(order).toEqual(['run', 'fn']);
    // The probe is kept beside the message, never on it (util.inspect, loggers).
    expect(Object.keys(message)).toEqual(['body']);
  });
});

// ---- the operators -----------------------------------------------------------------------------

describe('operators run the handler inside the delivery probe', () => {
  it('ackOnSuccess', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 1);
        deliver(peer, 2);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const outside: (number | undefined)[] = [];
    const inside: [number, number | undefined][] = [];
    // observeOn takes each delivery out of the client's hand-over (and its probe.run).
    const subscription = channel
      .consume('q')
      .pipe(
        observeOn(asyncScheduler),
        tap(() => outside.push(rec.running)),
        ackOnSuccess((d) => {
          inside.push([d.fields.deliveryTag, rec.running]);
        }),
      )
      .subscribe();
    await until(
      () => rec.deliveries.length === 2 && rec.deliveries.every((d) => d.ends.length === 1),
      5000,
      'two acks',
    );
    subscription.unsubscribe();
    await closeAll(connection, channel);
    await server.done();
    expect(outside).toEqual([undefined, undefined]);
    expect(inside).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(rec.deliveries.map((d) => d.ends.map((e) => e.how))).toEqual([['ack'], ['ack']]);
    expect(ackedTags(rest)).toEqual([1, 2]);
  });

  it('answerRequests', async () => {
    let reply: { routingKey: string; correlationId: string | undefined; body: string } | undefined;
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        await acceptConsume(peer);
        deliver(peer, 7, { replyTo: 'reply-q', correlationId: 'c-7' });
        const content = await peer.expectContent('basic.publish', { channel: 1 });
        reply = {
          routingKey: content.method.routingKey,
          correlationId: content.properties.correlationId,
          body: content.body.toString(),
        };
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const rec = recorder();
    const { connection, channel } = await open({ telemetry: rec.instrumentation });
    const inside: (number | undefined)[] = [];
    const outside: (number | undefined)[] = [];
    const subscription = channel
      .consume('q')
      .pipe(
        observeOn(asyncScheduler),
        tap(() => outside.push(rec.running)),
        answerRequests(channel, () => {
          inside.push(rec.running);
          return 'pong';
        }),
      )
      .subscribe();
    await until(() => rec.deliveries[0]?.ends.length === 1, 5000, 'the request to be acked');
    subscription.unsubscribe();
    await closeAll(connection, channel);
    await server.done();
    expect(outside).toEqual([undefined]);
    expect(inside).toEqual([7]);
    expect(reply).toEqual({ routingKey: 'reply-q', correlationId: 'c-7', body: 'pong' });
    expect(rec.deliveries[0]!.ends).toEqual([{ how: 'ack', requeue: false, error: undefined }]);
    expect(rest).toContain('ack 7');
  });
});

// ---- the publisher and the ambient context -----------------------------------------------------

describe('createPublisher and the ambient context', () => {
  it('publishes a message held while disconnected in the context it was published in', async () => {
    let rest: string[] = [];
    server = await ScriptedServer.start(
      async (peer) => {
        await openChannel1(peer);
        rest = await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    let currentTag: unknown;
    setAmbientContext({
      capture: () => currentTag,
      detached: (fn) => fn(),
      run: (captured, fn) => {
        const previous = currentTag;
        currentTag = captured;
        try {
          return fn();
        } finally {
          currentTag = previous;
        }
      },
    });
    const seen: [string, unknown][] = [];
    const instrumentation: Instrumentation = {
      publish: (start) => {
        seen.push([start.routingKey, currentTag]);
        return undefined;
      },
    };
    const connection$ = connect({
      hostname: '127.0.0.1',
      port: server.port,
      connectionTimeout: 3000,
      telemetry: instrumentation,
    });
    const publisher = createPublisher(connection$, { confirm: false });
    currentTag = 'trace-A';
    const held = lastValueFrom(publisher.publish('ex', 'held', 'x'));
    currentTag = undefined;
    // No connection yet: the message waits in the publisher, and nothing was told yet.
    expect(publisher.buffered).toBe(1);
    expect(seen).toEqual([]);
    expect(await held).toEqual({ status: 'sent' });
    // Published while connected: the context then is the caller's own.
    currentTag = 'trace-B';
    const direct = lastValueFrom(publisher.publish('ex', 'direct', 'y'));
    currentTag = undefined;
    expect(await direct).toEqual({ status: 'sent' });
    await lastValueFrom(publisher.close());
    await server.done();
    expect(seen).toEqual([
      ['held', 'trace-A'],
      ['direct', 'trace-B'],
    ]);
    expect(currentTag).toBeUndefined();
    expect(rest).toEqual(['publish held', 'publish direct', 'channel.close', 'connection.close']);
  });
});

// ---- the telemetry option ----------------------------------------------------------------------

describe('the telemetry option', () => {
  const failure = (telemetry: unknown): Promise<unknown> =>
    firstValueFrom(connect('amqp://127.0.0.1:1', { telemetry: telemetry as Instrumentation })).then(
      () => new Error('expected a ConfigurationError'),
      (e: unknown) => e,
    );

  it('fails with a ConfigurationError naming it when not an object', async () => {
    for (const value of [5, 'otel', null, true]) {
      const error = await failure(value);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toMatch(/^telemetry must be an instrumentation object/);
    }
  });

  it('fails with a ConfigurationError naming the method that is not a function', async () => {
    const error = await failure({ publish: 'x' });
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/telemetry\.publish must be a function/);
    expect(await failure({ deliver: () => undefined, event: 1 })).toMatchObject({
      message: expect.stringMatching(/telemetry\.event must be a function/),
    });
    await expect(
      openConnection('amqp://127.0.0.1:1', { telemetry: 5 as unknown as Instrumentation }),
    ).rejects.toThrow(ConfigurationError);
  });

  it('accepts an instrumentation object, every method optional', () => {
    const instrumentation: Instrumentation = {};
    expect(resolveOptions('amqp://127.0.0.1', { telemetry: instrumentation }, nodePlatform).telemetry).toBe(
      instrumentation,
    );
    expect(resolveOptions('amqp://127.0.0.1', {}, nodePlatform).telemetry).toBeUndefined();
  });
});

// ---- rxamqp/otel -------------------------------------------------------------------------------

describe('rxamqp/otel', () => {
  const configError = (options: unknown): ConfigurationError => {
    try {
      openTelemetry(options as OpenTelemetryOptions);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigurationError);
      return e as ConfigurationError;
    }
    throw new Error('expected a ConfigurationError');
  };

  it('refuses bad options with a ConfigurationError, and then sets no ambient context', () => {
    expect(configError({ bogus: 1 }).message).toMatch(/no option 'bogus'/);
    expect(configError({ tracing: 'yes' }).message).toMatch(/tracing must be a boolean/);
    expect(configError({ metrics: 1 }).message).toMatch(/metrics must be a boolean/);
    expect(configError({ settleSpans: 'no' }).message).toMatch(/settleSpans must be a boolean/);
    expect(configError({ consumerSpans: 'child' }).message).toMatch(
      /consumerSpans must be 'parent' or 'link'/,
    );
    expect(configError({ tracerProvider: {} }).message).toMatch(/tracerProvider must have getTracer/);
    expect(configError({ meterProvider: { getTracer: () => undefined } }).message).toMatch(
      /meterProvider must have getMeter/,
    );
    expect(configError({ propagator: { inject: () => undefined } }).message).toMatch(
      /propagator must have inject/,
    );
    expect(configError(null).message).toMatch(/options must be an object/);
    expect(ambientContext()).toBeUndefined();
  });

  it.each([
    [['', ''], 'amq.default'],
    [['ex', ''], 'ex'],
    [['', 'q'], 'q'],
    [['ex', 'rk'], 'ex:rk'],
    [['ex', 'rk', 'q'], 'ex:rk:q'],
    [['', 'q', 'q'], 'q'],
    [['ex', 'q', 'q'], 'ex:q'],
  ] as const)('destinationName(%j) is %s', (args, expected) => {
    expect(destinationName(...(args as unknown as [string, string, string?]))).toBe(expected);
  });
});
