/**
 * `rxamqp/nestjs` with `rxamqp/otel` against RabbitMQ: a `@Consume` handler runs inside the delivery's
 * process span (its own spans are children of it, `trace.getActiveSpan()` is it), in the trace of the
 * request that published the message through the module's publisher.
 */
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { type Span, trace } from '@opentelemetry/api';
import { lastValueFrom } from 'rxjs';
import { AmqpPayload, Consume, InjectPublisher, RxAmqpModule } from '../../src/nestjs/index.js';
import { openConnection, type Publisher } from '../../src/node.js';
import { openTelemetry } from '../../src/otel/index.js';
import { brokerUrl } from '../support/broker.js';
import { installTracing } from '../support/otel.js';
import { until } from './support.js';

const QUEUE = `nest-tracing.${process.pid}.${Date.now().toString(36)}`;

const { exporter, tracerProvider, stop } = installTracing();
const app$ = tracerProvider.getTracer('nest-app');

@Injectable()
class Orders {
  /** What the handler saw: the active span's ids, and its payload. */
  readonly seen: { spanId: string | undefined; traceId: string | undefined; payload: unknown }[] = [];

  constructor(@InjectPublisher() readonly publisher: Publisher) {}

  @Consume({ queue: { name: QUEUE, durable: false } })
  async handle(@AmqpPayload() payload: unknown): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    const active = trace.getActiveSpan()?.spanContext();
    this.seen.push({ spanId: active?.spanId, traceId: active?.traceId, payload });
    app$.startSpan('save order').end();
  }
}

let app: TestingModule;
let orders: Orders;

beforeAll(async () => {
  app = await Test.createTestingModule({
    imports: [
      RxAmqpModule.forRoot({
        url: await brokerUrl(),
        connection: { telemetry: openTelemetry({ tracerProvider }) },
      }),
    ],
    providers: [Orders],
  }).compile();
  await app.init();
  orders = app.get(Orders);
});

afterAll(async () => {
  await app?.close();
  const conn = await openConnection(await brokerUrl());
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDelete(QUEUE));
  await lastValueFrom(conn.close());
  await stop();
});

it('runs a @Consume handler inside the process span of the delivery, in the publishing request’s trace', async () => {
  const request: Span = await app$.startActiveSpan('POST /orders', async (span) => {
    await lastValueFrom(
      orders.publisher.publish('', QUEUE, JSON.stringify({ id: 42 }), { contentType: 'application/json' }),
    );
    span.end();
    return span;
  });
  await until(() => orders.seen.length === 1, 8000, 'the handler');
  await until(
    () => exporter.getFinishedSpans().some((s) => s.name === `process ${QUEUE}`),
    5000,
    'the process span',
  );
  const spans = exporter.getFinishedSpans();
  const process = spans.find((s) => s.name === `process ${QUEUE}`)!;
  const publish = spans.find((s) => s.name === `publish ${QUEUE}`)!;
  const save = spans.find((s) => s.name === 'save order')!;
  expect(orders.seen[0]).toEqual({
    spanId: process.spanContext().spanId,
    traceId: request.spanContext().traceId,
    payload: { id: 42 },
  });
  expect(publish.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
  expect(process.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
  expect(save.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
  expect(process.attributes['rxamqp.settlement']).toBe('ack');
});
