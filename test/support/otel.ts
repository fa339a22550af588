/**
 * The OpenTelemetry SDK as the tests use it: globals installed once per test file (an
 * `AsyncLocalStorage` context manager and the W3C propagator), spans kept in memory, and a metric
 * reader the test collects from when it wants.
 *
 * @module
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  type DataPoint,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** A metric reader collected on demand, with cumulative sums. */
export class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** The data points of the metric `name` in a collection. */
export function points(collected: ResourceMetrics, name: string): DataPoint<unknown>[] {
  return collected.scopeMetrics
    .flatMap((s) => s.metrics)
    .filter((m) => m.descriptor.name === name)
    .flatMap((m) => m.dataPoints as DataPoint<unknown>[]);
}

/** What {@link installTracing} sets up. */
export interface Tracing {
  readonly exporter: InMemorySpanExporter;
  readonly tracerProvider: BasicTracerProvider;
  /** Shuts the provider down and disables the context manager (call in `afterAll`). */
  stop(): Promise<void>;
}

/** Installs the context manager and the propagator globally, and a tracer provider keeping spans in memory. */
export function installTracing(): Tracing {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return {
    exporter,
    tracerProvider,
    stop: async () => {
      await tracerProvider.shutdown();
      contextManager.disable();
    },
  };
}
