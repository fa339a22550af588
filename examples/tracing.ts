/**
 * Tracing and metrics with OpenTelemetry (`rxamqp/otel`): one trace from an incoming "HTTP request"
 * through RabbitMQ to the worker that handles each message, and the client's metrics.
 *
 * Two connections, as two services would have: `web` publishes three orders on a confirm channel
 * inside the span of a request it is serving; `worker` consumes them with `ackOnSuccess`, and its
 * handler makes a span of its own. Both connections have `telemetry: openTelemetry()`; the trace
 * context travels in the message headers (W3C `traceparent`), so the worker's spans join the
 * request's trace. The example collects the finished spans in memory and prints them as a tree, then
 * prints a few of the metrics.
 *
 *   npx tsx examples/tracing.ts                      # the broker is AMQP_URL, or amqp://guest:guest@127.0.0.1:5672
 *   TRACING_CONSOLE=1 npx tsx examples/tracing.ts    # also the SDK's ConsoleSpanExporter, span by span
 *
 * It declares an auto-delete exchange and an exclusive queue (both gone when it ends), and exits with
 * status 1, printing one line, on failure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { context, metrics, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  MeterProvider,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type Connection, openConnection } from 'rxamqp';
import { ackOnSuccess } from 'rxamqp/operators';
import { openTelemetry } from 'rxamqp/otel';
import { lastValueFrom, take, timeout, toArray } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const EXCHANGE = 'example.orders';
const ROUTING_KEY = 'created';
const QUEUE = `example.billing.${process.pid}`;

interface Order {
  readonly id: number;
  readonly item: string;
  readonly quantity: number;
}

const orders: Order[] = [
  { id: 1, item: 'coffee', quantity: 2 },
  { id: 2, item: 'tea', quantity: 1 },
  { id: 3, item: 'cake', quantity: 3 },
];

// ---- The OpenTelemetry SDK: registered before openTelemetry() is called -------------------------

/** A metric reader that collects only when asked (`reader.collect()`), for printing at the end. */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const finished = new InMemorySpanExporter();
const processors: SpanProcessor[] = [new SimpleSpanProcessor(finished)];
if (process.env.TRACING_CONSOLE === '1') processors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
const tracerProvider = new BasicTracerProvider({ spanProcessors: processors });
trace.setGlobalTracerProvider(tracerProvider);

const reader = new OnDemandReader();
const meterProvider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(meterProvider);

/** The application's own tracer (the request and the handler's work). */
const tracer = trace.getTracer('tracing-example');

// ---- The application ----------------------------------------------------------------------------

async function main(): Promise<void> {
  // After the SDK: openTelemetry() takes the global providers when it is called.
  const telemetry = openTelemetry();
  const web = await openConnection(url, { name: 'web', telemetry, connectionTimeout: 5_000 });
  let worker: Connection | undefined;
  try {
    worker = await openConnection(url, { name: 'worker', telemetry, connectionTimeout: 5_000 });

    // The worker's topology: both go away with the worker's connection.
    const wch = await worker.openChannel();
    await lastValueFrom(wch.exchangeDeclare(EXCHANGE, 'direct', { autoDelete: true }), {
      defaultValue: undefined,
    });
    await lastValueFrom(wch.queueDeclare(QUEUE, { exclusive: true }));
    await lastValueFrom(wch.queueBind(QUEUE, EXCHANGE, ROUTING_KEY), { defaultValue: undefined });

    // The consumer: its handler runs inside the delivery's `process` span, so the span it starts is a
    // child of that one, in the request's trace.
    const handled = lastValueFrom(
      wch.consume(QUEUE, { prefetch: 10 }).pipe(
        ackOnSuccess((delivery) => {
          const order = delivery.json<Order>();
          return tracer.startActiveSpan(
            'reserve stock',
            { attributes: { 'order.id': order.id, 'order.item': order.item } },
            async (span) => {
              try {
                await sleep(2 * order.quantity); // the work
                return order.id;
              } finally {
                span.end();
              }
            },
          );
        }),
        take(orders.length),
        toArray(),
        timeout(10_000),
      ),
    );

    // The web side: a confirm channel, and a request whose handling publishes the three orders.
    const pch = await web.openChannel();
    await lastValueFrom(pch.confirmSelect(), { defaultValue: undefined });
    await tracer.startActiveSpan(
      'POST /orders',
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'http.route': '/orders' } },
      async (request) => {
        try {
          // Each publish starts in the request's context: its PRODUCER span is a child of the request.
          await Promise.all(
            orders.map((order) =>
              lastValueFrom(
                pch.publish(EXCHANGE, ROUTING_KEY, JSON.stringify(order), {
                  contentType: 'application/json',
                  messageId: `order-${order.id}`,
                }),
              ),
            ),
          );
        } finally {
          request.end();
        }
      },
    );

    const ids = await handled;
    console.log(`worker handled orders ${ids.join(', ')}\n`);
  } finally {
    if (worker !== undefined) await lastValueFrom(worker.close(), { defaultValue: undefined });
    await lastValueFrom(web.close(), { defaultValue: undefined });
  }

  printTrace(finished.getFinishedSpans());
  await printMetrics();
}

// ---- Printing -----------------------------------------------------------------------------------

/** The attributes shown in the tree (the full set is in the spans: TRACING_CONSOLE=1 prints it). */
const SHOWN = [
  'http.route',
  'messaging.message.id',
  'rxamqp.publish.outcome',
  'rxamqp.publish.seq',
  'messaging.rabbitmq.message.delivery_tag',
  'rxamqp.settlement',
  'order.item',
];

const ms = (span: ReadableSpan): number => span.duration[0] * 1e3 + span.duration[1] / 1e6;

/** Prints the spans as trees: each root (a span whose parent is not among them), its children below it. */
function printTrace(spans: ReadableSpan[]): void {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const children = new Map<string, ReadableSpan[]>();
  const roots: ReadableSpan[] = [];
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId;
    if (parent === undefined || !ids.has(parent)) roots.push(span);
    else children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const byStart = (a: ReadableSpan, b: ReadableSpan): number =>
    a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1];

  const print = (span: ReadableSpan, lead: string, branch: string): void => {
    const shown = SHOWN.filter((key) => span.attributes[key] !== undefined)
      .map((key) => `${key}=${String(span.attributes[key])}`)
      .join(' ');
    const kind = SpanKind[span.kind];
    console.log(
      `${lead}${branch}${span.name} [${kind}] ${ms(span).toFixed(1)} ms${shown === '' ? '' : `  ${shown}`}`,
    );
    const below = (children.get(span.spanContext().spanId) ?? []).sort(byStart);
    const next = lead + (branch === '' ? '' : branch === '├─ ' ? '│  ' : '   ');
    for (const [i, child] of below.entries()) print(child, next, i === below.length - 1 ? '└─ ' : '├─ ');
  };

  for (const root of roots.sort(byStart)) {
    console.log(`trace ${root.spanContext().traceId}`);
    print(root, '', '');
    console.log();
  }
}

/** The metrics shown, from the `rxamqp` instrumentation scope. */
const METRICS = [
  'messaging.client.sent.messages',
  'rxamqp.publish.outcomes',
  'messaging.client.operation.duration',
  'messaging.client.consumed.messages',
  'rxamqp.settlements',
  'messaging.process.duration',
];

async function printMetrics(): Promise<void> {
  const { resourceMetrics } = await reader.collect();
  const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === 'rxamqp');
  console.log('metrics');
  for (const name of METRICS) {
    const metric = scope?.metrics.find((m) => m.descriptor.name === name);
    if (metric === undefined) continue;
    for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
      const labels = Object.entries(point.attributes)
        .filter(([key]) => key !== 'messaging.system')
        .map(([key, value]) => `${key}=${String(value)}`)
        .join(', ');
      const value =
        metric.dataPointType === DataPointType.HISTOGRAM
          ? histogram(point.value as Histogram)
          : `${point.value as number}`;
      console.log(`  ${name} {${labels}} ${value}`);
    }
  }
}

/** A histogram's count and mean (rxamqp's histograms are in seconds: shown in milliseconds). */
function histogram(h: Histogram): string {
  const mean = h.count === 0 ? 0 : (h.sum ?? 0) / h.count;
  return `count ${h.count}, mean ${(mean * 1000).toFixed(1)} ms`;
}

// ---- Run ----------------------------------------------------------------------------------------

try {
  await main();
} catch (e) {
  console.error(`tracing example failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
} finally {
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  contextManager.disable();
}
