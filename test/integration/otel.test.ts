/**
 * `rxamqp/otel` against RabbitMQ, with the OpenTelemetry SDK's in-memory exporter and a manual metric
 * reader: one trace from an HTTP-like span through publish, delivery and processing across two
 * connections; the trace going on across a reconnect (a publisher holding the message) and across
 * `retryWithDelay`'s republish; metric counts of a known run; no secret and no body in any
 * attribute, event or metric label.
 */
import { randomUUID } from 'node:crypto';
import { type Span, SpanKind } from '@opentelemetry/api';
import { type DataPoint, MeterProvider, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  catchError,
  defer,
  filter,
  firstValueFrom,
  lastValueFrom,
  map,
  mergeMap,
  of,
  type Subscription,
  take,
  throwError,
  timeout,
  toArray,
} from 'rxjs';
import { ackOnSuccess, retryWithDelay } from '../../operators/index.js';
import {
  type Channel,
  type Connection,
  type ConnectionObservable,
  connect,
  createPublisher,
  type Delivery,
  openConnection,
} from '../../src/node.js';
import { openTelemetry } from '../../src/otel/index.js';
import { type BrokerEndpoint, brokerEndpoint } from '../support/broker.js';
import { installTracing, TestReader } from '../support/otel.js';
import { closeConnectionsNamed, rabbitmqctl } from '../support/rabbitmqctl.js';
import { until } from '../support/until.js';

const { exporter, tracerProvider, stop } = installTracing();
const app = tracerProvider.getTracer('test-app');

let endpoint: BrokerEndpoint;
const user = `rxamqp-test-otel-${process.pid}`;
const password = `Otel-Secret-${randomUUID()}`;
const subscriptions: Subscription[] = [];
const connections: Connection[] = [];

beforeAll(async () => {
  endpoint = await brokerEndpoint();
  await rabbitmqctl('add_user', user, password);
  await rabbitmqctl('set_permissions', '-p', endpoint.vhost, user, '.*', '.*', '.*');
});

afterAll(async () => {
  await rabbitmqctl('delete_user', user);
  await stop();
});

afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  for (const c of connections.splice(0)) await lastValueFrom(c.close()).catch(() => undefined);
  exporter.reset();
});

/** The test user's URL (its password is the secret no attribute may show). */
function url(): string {
  const vhost = encodeURIComponent(endpoint.vhost);
  return `amqp://${user}:${encodeURIComponent(password)}@${endpoint.host}:${endpoint.port}/${vhost}`;
}

const unique = (what: string) => `rxamqp-test-otel-${what}-${randomUUID().slice(0, 8)}`;

interface Meters {
  readonly reader: TestReader;
  readonly provider: MeterProvider;
}

function meters(): Meters {
  const reader = new TestReader();
  return { reader, provider: new MeterProvider({ readers: [reader] }) };
}

/** An open connection with telemetry (closed after the test). */
async function open(name: string, meterProvider?: MeterProvider): Promise<Connection> {
  const connection = await openConnection(url(), {
    name,
    telemetry: openTelemetry({ tracerProvider, ...(meterProvider === undefined ? {} : { meterProvider }) }),
  });
  connections.push(connection);
  return connection;
}

/** A channel kept open until the test ends. */
function channelOf(connection: Connection): Promise<Channel> {
  return new Promise((resolve, reject) => {
    subscriptions.push(connection.channel().subscribe({ next: resolve, error: reject }));
  });
}

function spans(): ReadableSpan[] {
  return exporter.getFinishedSpans();
}

function named(name: string): ReadableSpan[] {
  return spans().filter((s) => s.name === name);
}

function one(name: string): ReadableSpan {
  const found = named(name);
  if (found.length !== 1) {
    throw new Error(
      `expected one span named ${name}, found ${found.length}: ${spans()
        .map((s) => s.name)
        .join(', ')}`,
    );
  }
  return found[0]!;
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan | Span) => span.spanContext().spanId;
const traceOf = (span: ReadableSpan | Span) => span.spanContext().traceId;

/** Runs `fn` inside a new active span, returning the span (ended after `fn` settles). */
async function inSpan(name: string, fn: () => Promise<unknown>): Promise<Span> {
  return app.startActiveSpan(name, async (span) => {
    try {
      await fn();
    } finally {
      span.end();
    }
    return span;
  });
}

/** Sum of a counter's (or a histogram's count of) data points with the given attributes. */
function total(collected: ResourceMetrics, name: string, where: Record<string, unknown> = {}): number {
  let sum = 0;
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      for (const point of metric.dataPoints as DataPoint<unknown>[]) {
        if (!Object.entries(where).every(([k, v]) => point.attributes[k] === v)) continue;
        const value = point.value;
        sum += typeof value === 'number' ? value : (value as { count: number }).count;
      }
    }
  }
  return sum;
}

async function collect(reader: TestReader): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics;
}

describe('rxamqp/otel against RabbitMQ', () => {
  it('makes one trace of a request that publishes and the consumer that processes it, across two connections', async () => {
    const queue = unique('trace');
    const producer = await open('otel-producer');
    const consumer = await open('otel-consumer');
    const out = await channelOf(producer);
    await lastValueFrom(out.queueDeclare(queue, { autoDelete: true }));
    await lastValueFrom(out.confirmSelect());
    const input = await channelOf(consumer);
    const handled = firstValueFrom(
      input.consume(queue).pipe(
        ackOnSuccess(async (delivery: Delivery) => {
          await new Promise((r) => setTimeout(r, 5));
          app.startSpan('handler work').end();
          return delivery.text();
        }),
        take(1),
        timeout(5000),
      ),
    );
    const request = await inSpan('POST /orders', () =>
      lastValueFrom(out.publish('', queue, 'order 1', { messageId: 'order-1', correlationId: 'conv-7' })),
    );
    expect(await handled).toBe('order 1');
    await until(() => named(`ack ${queue}`).length === 1, 5000, 'the ack span');

    const publish = one(`publish ${queue}`);
    const process = one(`process ${queue}`);
    const work = one('handler work');
    const ack = one(`ack ${queue}`);
    for (const span of [publish, process, work, ack]) expect(traceOf(span)).toBe(traceOf(request));
    expect(parentOf(publish)).toBe(idOf(request));
    expect(parentOf(process)).toBe(idOf(publish));
    expect(parentOf(work)).toBe(idOf(process));
    expect(parentOf(ack)).toBe(idOf(process));
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(ack.kind).toBe(SpanKind.CLIENT);
    expect(publish.attributes).toEqual(
      expect.objectContaining({
        'messaging.system': 'rabbitmq',
        'messaging.operation.name': 'publish',
        'messaging.operation.type': 'send',
        'messaging.destination.name': queue,
        'messaging.rabbitmq.destination.routing_key': queue,
        'messaging.message.id': 'order-1',
        'messaging.message.conversation_id': 'conv-7',
        'messaging.message.body.size': 7,
        'server.address': endpoint.host,
        'server.port': endpoint.port,
        'rxamqp.publish.outcome': 'acked',
      }),
    );
    expect(process.attributes).toEqual(
      expect.objectContaining({
        'messaging.operation.type': 'process',
        'messaging.destination.name': queue,
        'messaging.rabbitmq.message.delivery_tag': 1,
        'messaging.message.id': 'order-1',
        'rxamqp.settlement': 'ack',
      }),
    );
    expect(ack.attributes['messaging.operation.type']).toBe('settle');
    // The publish span lasts until the broker's confirm: it ends after it started, within the request.
    expect(publish.ended).toBe(true);
  });

  it('goes on across a reconnect: a publisher holds the message with its context while disconnected', async () => {
    const queue = unique('reconnect');
    const consumer = await open('otel-reconnect-consumer');
    const input = await channelOf(consumer);
    await lastValueFrom(input.queueDeclare(queue, { autoDelete: true }));
    const received: Delivery[] = [];
    subscriptions.push(
      input.consume(queue).subscribe((d) => {
        received.push(d);
        d.ack();
      }),
    );

    const name = unique('publisher');
    const { reader, provider } = meters();
    const connection$: ConnectionObservable = connect(url(), {
      name,
      recovery: { reconnect: { delays: [300], maxAttempts: 20 } },
      telemetry: openTelemetry({ tracerProvider, meterProvider: provider }),
    });
    const publisher = createPublisher(connection$);
    expect((await lastValueFrom(publisher.publish('', queue, 'warm-up'))).status).toBe('acked');

    await closeConnectionsNamed(name);
    await until(() => connection$.toJSON().status === 'RECONNECTING', 5000, 'the loss noticed');
    let outcome: string | undefined;
    const request = await inSpan('POST /while-down', async () => {
      publisher.publish('', queue, 'held').subscribe((o) => {
        outcome = o.status;
      });
      expect(publisher.buffered).toBe(1);
    });
    await until(() => outcome === 'acked', 10_000, 'the held message confirmed');
    await until(() => received.some((d) => d.text() === 'held'), 5000, 'the held message delivered');

    // Its publish span is the request's child, though it was written after the reconnect...
    const heldPublish = named(`publish ${queue}`).find((s) => traceOf(s) === traceOf(request));
    expect(heldPublish).toBeDefined();
    expect(parentOf(heldPublish!)).toBe(idOf(request));
    expect(heldPublish!.attributes['rxamqp.publish.outcome']).toBe('acked');
    // ...the message carries the request's trace, and the consumer's span for it joins the trace.
    const held = received.find((d) => d.text() === 'held')!;
    expect(String(held.properties.headers?.traceparent)).toContain(traceOf(request));
    await until(
      () => named(`process ${queue}`).some((s) => traceOf(s) === traceOf(request)),
      5000,
      "the consumer's span in the request's trace",
    );

    await lastValueFrom(publisher.close());
    const collected = await collect(reader);
    expect(total(collected, 'rxamqp.connection.reconnects', { 'rxamqp.connection': name })).toBe(1);
    expect(
      total(collected, 'rxamqp.connection.state_changes', {
        'rxamqp.connection': name,
        'rxamqp.connection.state': 'RECONNECTING',
      }),
    ).toBe(1);
    await provider.shutdown();
  });

  it("goes on across retryWithDelay's republish", async () => {
    const queue = unique('retry');
    const connection = await open('otel-retry');
    const channel = await channelOf(connection);
    await lastValueFrom(channel.queueDeclare(queue, { autoDelete: true }));
    const retry = retryWithDelay(channel, { queue, delays: [20] });
    let attempts = 0;
    const done = firstValueFrom(
      channel.consume(queue).pipe(
        mergeMap((d) =>
          defer(() => {
            attempts++;
            return attempts === 1 ? throwError(() => new Error('first attempt fails')) : of('ok');
          }).pipe(
            map(() => {
              d.ack();
              return 'processed';
            }),
            catchError(() => of(d).pipe(retry)),
          ),
        ),
        filter((result) => result === 'processed'),
        take(1),
        timeout(5000),
      ),
    );
    const request = await inSpan('POST /retry', () => lastValueFrom(channel.publish('', queue, 'job')));
    await done;
    await until(() => named(`process ${queue}`).length === 2, 5000, 'two process spans');
    const processes = named(`process ${queue}`);
    const publishes = named(`publish ${queue}`);
    expect(publishes).toHaveLength(2);
    for (const span of [...processes, ...publishes]) expect(traceOf(span)).toBe(traceOf(request));
    const settlements = processes.map((s) => s.attributes['rxamqp.settlement']).sort();
    // The original is acked once its copy is published; the copy is acked by the handler.
    expect(settlements).toEqual(['ack', 'ack']);
  });

  it('counts a known run in its metrics', async () => {
    const queue = unique('metrics');
    const { reader, provider } = meters();
    const connection = await open('otel-metrics', provider);
    const channel = await channelOf(connection);
    await lastValueFrom(channel.queueDeclare(queue, { autoDelete: true }));
    await lastValueFrom(channel.confirmSelect());
    for (let i = 0; i < 5; i++) await lastValueFrom(channel.publish('', queue, `m${i}`));
    const unroutable = await lastValueFrom(
      channel.publish('', unique('nowhere'), 'lost', {}, { mandatory: true }),
    );
    expect(unroutable.status).toBe('returned');
    const deliveries = await lastValueFrom(channel.consume(queue).pipe(take(5), timeout(5000), toArray()));
    deliveries[0]!.ack();
    deliveries[1]!.ack();
    deliveries[2]!.ack();
    deliveries[3]!.nack({ requeue: false });
    deliveries[4]!.reject({ requeue: false });
    await until(() => named(`process ${queue}`).length === 5, 5000, 'five process spans');

    const collected = await collect(reader);
    const queueLabel = { 'messaging.destination.template': queue };
    expect(total(collected, 'messaging.client.sent.messages', queueLabel)).toBe(5);
    expect(total(collected, 'messaging.client.sent.messages')).toBe(6);
    expect(
      total(collected, 'rxamqp.publish.outcomes', { ...queueLabel, 'rxamqp.publish.outcome': 'acked' }),
    ).toBe(5);
    expect(total(collected, 'rxamqp.publish.outcomes', { 'rxamqp.publish.outcome': 'returned' })).toBe(1);
    expect(total(collected, 'messaging.client.operation.duration')).toBe(6);
    expect(total(collected, 'messaging.client.consumed.messages', queueLabel)).toBe(5);
    expect(total(collected, 'rxamqp.settlements', { ...queueLabel, 'rxamqp.settlement': 'ack' })).toBe(3);
    expect(total(collected, 'rxamqp.settlements', { ...queueLabel, 'rxamqp.settlement': 'nack' })).toBe(1);
    expect(total(collected, 'rxamqp.settlements', { ...queueLabel, 'rxamqp.settlement': 'reject' })).toBe(1);
    expect(total(collected, 'messaging.process.duration', queueLabel)).toBe(5);
    expect(
      total(collected, 'rxamqp.connection.state_changes', {
        'rxamqp.connection': 'otel-metrics',
        'rxamqp.connection.state': 'CONNECTED',
      }),
    ).toBe(1);
    expect(total(collected, 'rxamqp.connection.reconnects')).toBe(0);

    // Nothing of the run shows the password or a body, in spans or in metric labels.
    const shown = JSON.stringify({
      spans: spans().map((s) => ({
        name: s.name,
        attributes: s.attributes,
        events: s.events,
        status: s.status,
      })),
      metrics: collected.scopeMetrics.flatMap((s) =>
        s.metrics.map((m) => m.dataPoints.map((p) => p.attributes)),
      ),
    });
    expect(shown).toContain(queue);
    expect(shown).not.toContain(password);
    expect(shown).not.toContain(encodeURIComponent(password));
    for (const body of ['m0', 'm4', 'lost']) expect(shown).not.toContain(`"${body}"`);
    await provider.shutdown();
  });

  it('returned and nacked publishes end their spans with an error status', async () => {
    const connection = await open('otel-returned');
    const channel = await channelOf(connection);
    await lastValueFrom(channel.confirmSelect());
    const nowhere = unique('nowhere');
    await lastValueFrom(channel.publish('', nowhere, 'x', {}, { mandatory: true }));
    const span = one(`publish ${nowhere}`);
    expect(span.status.code).toBe(2);
    expect(span.attributes['error.type']).toBe('returned');
    expect(span.events.map((e) => e.name)).toEqual(['returned']);
  });

  it('links instead of parenting with consumerSpans: link, and follows basic.get as receive', async () => {
    const queue = unique('link');
    const producer = await open('otel-link-producer');
    const out = await channelOf(producer);
    await lastValueFrom(out.queueDeclare(queue, { arguments: { 'x-expires': 60_000 } }));
    const consumer = await openConnection(url(), {
      telemetry: openTelemetry({ tracerProvider, consumerSpans: 'link', settleSpans: false }),
    });
    connections.push(consumer);
    const input = await channelOf(consumer);
    await inSpan('POST /link', () => lastValueFrom(out.publish('', queue, 'a')));
    const delivery = await firstValueFrom(input.consume(queue).pipe(take(1), timeout(5000)));
    delivery.ack();
    await until(() => named(`process ${queue}`).length === 1, 5000, 'the process span');
    const publish = one(`publish ${queue}`);
    const process = one(`process ${queue}`);
    expect(traceOf(process)).not.toBe(traceOf(publish));
    expect(process.links.map((l) => l.context.spanId)).toEqual([idOf(publish)]);
    expect(named(`ack ${queue}`)).toHaveLength(0);

    await lastValueFrom(out.publish('', queue, 'b'));
    const pulled = await inSpan('GET /pull', async () => {
      const got = await lastValueFrom(input.get(queue));
      got.ack();
    });
    const receive = one(`receive ${queue}`);
    // A pull is a CLIENT call of the application's, ended once it has the message.
    expect(receive.kind).toBe(SpanKind.CLIENT);
    expect(receive.attributes['rxamqp.settlement']).toBeUndefined();
    expect(parentOf(receive)).toBe(idOf(pulled));
    expect(receive.links).toHaveLength(1);
    await lastValueFrom(out.queueDelete(queue));
  });
});
