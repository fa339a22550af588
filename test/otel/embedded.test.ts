/**
 * `rxamqp/otel` against the embedded broker (`rxamqp/testing`), the other backend a user's tests
 * have: one trace from a request through publish, delivery and handler across two connections, and
 * the trace going on across a connection closed by the broker while a publisher holds the message.
 */
import { firstValueFrom, lastValueFrom, take, timeout } from 'rxjs';
import { ackOnSuccess } from '../../operators/index.js';
import { connect, createPublisher, openConnection } from '../../src/node.js';
import { openTelemetry } from '../../src/otel/index.js';
import { EmbeddedBroker } from '../../src/testing/node.js';
import { installTracing } from '../support/otel.js';
import { until } from '../support/until.js';

const { exporter, tracerProvider, stop } = installTracing();
const app = tracerProvider.getTracer('app');
const telemetry = openTelemetry({ tracerProvider, metrics: false });

let broker: EmbeddedBroker;
beforeEach(() => {
  broker = new EmbeddedBroker();
});
afterEach(async () => {
  await broker.close();
  exporter.reset();
});
afterAll(() => stop());

const URL = 'amqp://guest:guest@embedded';
const named = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

it('makes one trace of a request, its publish and the handler that processes it, across two connections', async () => {
  const producer = await openConnection(URL, { transport: broker.connector, telemetry });
  const consumer = await openConnection(URL, { transport: broker.connector, telemetry });
  const out = await producer.openChannel();
  await lastValueFrom(out.queueDeclare('orders'));
  await lastValueFrom(out.confirmSelect());
  const input = await consumer.openChannel();
  const handled = firstValueFrom(
    input.consume('orders').pipe(
      ackOnSuccess(async (d) => {
        await new Promise((r) => setTimeout(r, 1));
        app.startSpan('handler work').end();
        return d.text();
      }),
      take(1),
      timeout(5000),
    ),
  );
  const request = await app.startActiveSpan('POST /orders', async (span) => {
    await lastValueFrom(out.publish('', 'orders', 'order 1'));
    span.end();
    return span;
  });
  expect(await handled).toBe('order 1');
  await until(() => named('ack orders').length === 1, 5000, 'the ack span');
  const [publish] = named('publish orders');
  const [process] = named('process orders');
  const [work] = named('handler work');
  for (const span of [publish!, process!, work!]) {
    expect(span.spanContext().traceId).toBe(request.spanContext().traceId);
  }
  expect(publish!.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
  expect(process!.parentSpanContext?.spanId).toBe(publish!.spanContext().spanId);
  expect(work!.parentSpanContext?.spanId).toBe(process!.spanContext().spanId);
  expect(publish!.attributes['rxamqp.publish.outcome']).toBe('acked');
  await lastValueFrom(producer.close());
  await lastValueFrom(consumer.close());
});

it('keeps the request’s trace for a message a publisher holds while the broker closed its connection', async () => {
  const consumer = await openConnection(URL, { transport: broker.connector, telemetry });
  const input = await consumer.openChannel();
  await lastValueFrom(input.queueDeclare('jobs'));
  const connection$ = connect(URL, {
    name: 'publisher',
    transport: broker.connector,
    recovery: { reconnect: { delays: [50] } },
    telemetry,
  });
  const publisher = createPublisher(connection$);
  expect((await lastValueFrom(publisher.publish('', 'jobs', 'warm-up'))).status).toBe('acked');
  broker.closeConnection('publisher');
  await until(() => connection$.toJSON().status === 'RECONNECTING', 5000, 'the loss noticed');
  let outcome: string | undefined;
  const request = await app.startActiveSpan('POST /jobs', async (span) => {
    publisher.publish('', 'jobs', 'held').subscribe((o) => {
      outcome = o.status;
    });
    expect(publisher.buffered).toBe(1);
    span.end();
    return span;
  });
  await until(() => outcome === 'acked', 5000, 'the held message confirmed');
  const traceId = request.spanContext().traceId;
  const held = named('publish jobs').find((s) => s.spanContext().traceId === traceId);
  expect(held?.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
  const got = await lastValueFrom(input.get('jobs').pipe(take(1)));
  const second = await lastValueFrom(input.get('jobs').pipe(take(1)));
  const message = [got, second].find((d) => d.text() === 'held')!;
  expect(String(message.properties.headers?.traceparent)).toContain(traceId);
  await lastValueFrom(publisher.close());
  await lastValueFrom(consumer.close());
});
