/**
 * `rxamqp/otel`: OpenTelemetry for rxamqp, with `@opentelemetry/api` as an optional peer dependency.
 * `openTelemetry()` is an {@link Instrumentation} for the `telemetry` connection option: spans that
 * follow OpenTelemetry's messaging conventions for RabbitMQ, the trace context carried in the message
 * headers (W3C `traceparent` / `tracestate`, or whatever propagator is registered), and metrics.
 *
 * ```ts
 * import { openTelemetry } from 'rxamqp/otel';
 * const connection$ = connect('amqp://localhost', { telemetry: openTelemetry() });
 * ```
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  type Histogram,
  type Link,
  type Meter,
  type MeterProvider,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type {
  BasicProperties,
  DeliveryEnd,
  DeliveryProbe,
  DeliveryStart,
  DiagnosticEvent,
  FieldTable,
  FieldValue,
  Instrumentation,
  PublishOutcome,
  PublishProbe,
  PublishStart,
} from '../index.js';
import { ConfigurationError, setAmbientContext, TypedField, VERSION } from '../index.js';

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** Where spans go. Default: the global tracer provider (`trace.setGlobalTracerProvider`, or an SDK's `register()`). */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go. Default: the global meter provider. */
  readonly meterProvider?: MeterProvider;
  /** How the trace context is written into and read from message headers. Default: the global propagator (W3C Trace Context with an SDK). */
  readonly propagator?: TextMapPropagator;
  /** Spans and context propagation. Default true. */
  readonly tracing?: boolean;
  /** Metrics. Default true. */
  readonly metrics?: boolean;
  /**
   * How a consumer's span relates to the span that published the message: `'parent'` (default) makes
   * it a child, so that publish and processing are one trace; `'link'` starts a trace of its own with
   * a link to the producer's span (for long-lived flows where one trace per message is too much).
   */
  readonly consumerSpans?: 'parent' | 'link';
  /** A short `settle` span (`ack` / `nack` / `reject`) under the delivery's span for each settlement. Default true. */
  readonly settleSpans?: boolean;
}

/** The instrumentation scope rxamqp reports under. */
export const INSTRUMENTATION_NAME = 'rxamqp';

const SYSTEM = 'rabbitmq';

/** The label of a connection without a `name` (see `DiagnosticSource.connection`). */
const UNNAMED = /^rxamqp-\d+$/;

const decoder = new TextDecoder();

/** Reads trace headers from an AMQP headers table (values may be strings, bytes or typed fields). */
const getter: TextMapGetter<FieldTable> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const raw = carrier[key];
    const value: FieldValue | undefined = raw instanceof TypedField ? (raw.value as FieldValue) : raw;
    if (typeof value === 'string') return value;
    if (value instanceof Uint8Array) return decoder.decode(value);
    return undefined;
  },
};

const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/**
 * The messaging destination as OpenTelemetry's RabbitMQ conventions name it: the exchange and routing
 * key (`exchange:key`, one of them when the other is empty, `amq.default` when both are), and on the
 * consumer side the queue too (`exchange:key:queue`, the key left out when it is the queue's name).
 */
export function destinationName(exchange: string, routingKey: string, queue?: string): string {
  const parts: string[] = [];
  if (exchange !== '') parts.push(exchange);
  if (routingKey !== '' && routingKey !== queue) parts.push(routingKey);
  if (queue !== undefined && queue !== '') parts.push(queue);
  return parts.length === 0 ? 'amq.default' : parts.join(':');
}

/**
 * A destination's name where it must stay low-cardinality (span names, metric labels): the exchange a
 * message is published to, or for the default exchange the queue named by its routing key; on the
 * consumer side, the queue. Server-named queues (`amq.gen-...`) and direct reply-to addresses
 * (`amq.rabbitmq.reply-to...`, one per requester) collapse to one name each, and routing keys (a
 * topic exchange's, often one per entity) never appear.
 */
export function shortDestination(exchange: string, routingKey: string, queue?: string): string {
  if (queue !== undefined) return collapse(queue);
  if (exchange !== '') return exchange;
  return routingKey === '' ? 'amq.default' : collapse(routingKey);
}

function collapse(name: string): string {
  if (name.startsWith('amq.gen-')) return 'amq.gen-*';
  if (name.startsWith('amq.rabbitmq.reply-to')) return 'amq.rabbitmq.reply-to';
  return name;
}

/**
 * Metric label sets, made once per distinct combination: the SDK keys its series by the attributes'
 * content, and the combinations (a short destination, an outcome) are few.
 */
class LabelCache {
  private readonly sets = new Map<string, Attributes>();

  get(key: string, make: () => Attributes): Attributes {
    let labels = this.sets.get(key);
    if (labels === undefined) {
      labels = Object.freeze(make());
      // Bounded: past LABEL_SETS combinations (many per-process queues, say), sets are made per use.
      if (this.sets.size < LABEL_SETS) this.sets.set(key, labels);
    }
    return labels;
  }
}

/** Most label sets a `LabelCache` keeps. */
const LABEL_SETS = 1000;

/** Bucket boundaries of the duration histograms, in seconds (OpenTelemetry's advice for messaging). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** `error.type` of a failure: the error's code when it has one, else its class name. */
function errorType(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}

/** The instruments, made once per meter. */
class Instruments {
  readonly sent: Counter;
  readonly outcomes: Counter;
  readonly publishDuration: Histogram;
  readonly consumed: Counter;
  readonly settlements: Counter;
  readonly processDuration: Histogram;
  readonly stateChanges: Counter;
  readonly reconnects: Counter;
  readonly blockedDuration: Histogram;

  constructor(meter: Meter) {
    // Every duration is in seconds, in the buckets OpenTelemetry advises for messaging.
    const seconds = (name: string, description: string): Histogram =>
      meter.createHistogram(name, {
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
        description,
        unit: 's',
      });
    this.sent = meter.createCounter('messaging.client.sent.messages', {
      description: 'Messages the client published',
      unit: '{message}',
    });
    this.outcomes = meter.createCounter('rxamqp.publish.outcomes', {
      description: 'How publishes ended: sent (no confirms), acked, nacked, returned or failed',
      unit: '{message}',
    });
    this.publishDuration = seconds(
      'messaging.client.operation.duration',
      'Time from a publish to its outcome (the broker confirm on a confirm channel)',
    );
    this.consumed = meter.createCounter('messaging.client.consumed.messages', {
      description: 'Messages delivered to the client (consumers and basic.get)',
      unit: '{message}',
    });
    this.settlements = meter.createCounter('rxamqp.settlements', {
      description: 'How deliveries ended: ack, nack, reject, auto (noAck) or lost (channel closed)',
      unit: '{message}',
    });
    this.processDuration = seconds('messaging.process.duration', 'Time from a delivery to its settlement');
    this.stateChanges = meter.createCounter('rxamqp.connection.state_changes', {
      description: 'Connection state changes, by the state entered',
      unit: '{change}',
    });
    this.reconnects = meter.createCounter('rxamqp.connection.reconnects', {
      description: 'Connections opened again by recovery after a loss',
      unit: '{connection}',
    });
    this.blockedDuration = seconds(
      'rxamqp.connection.blocked.duration',
      'How long the broker kept the connection blocked (resource alarms)',
    );
  }
}

const now = (): number => performance.now();

/** Per connection: whether it was connected before (a reconnect), and since when it is blocked. */
interface ConnectionRecord {
  connectedBefore: boolean;
  blockedSince: number | undefined;
}

class OpenTelemetryInstrumentation implements Instrumentation {
  private readonly tracer: Tracer | undefined;
  /** True when metrics are on; the instruments are made at first use (see `instruments`). */
  private readonly metered: boolean;
  private readonly meterProvider: MeterProvider | undefined;
  private made: Instruments | undefined;
  private readonly propagator: TextMapPropagator | undefined;
  private readonly link: boolean;
  private readonly settleSpans: boolean;
  /** By connection lifetime (`DiagnosticSource.lifetime`): connections may share a name. */
  private readonly connections = new Map<number, ConnectionRecord>();
  private readonly labels = new LabelCache();

  constructor(options: OpenTelemetryOptions) {
    const tracing = options.tracing ?? true;
    this.tracer = tracing
      ? (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME, VERSION)
      : undefined;
    this.propagator = tracing ? (options.propagator ?? propagation) : undefined;
    this.metered = options.metrics ?? true;
    this.meterProvider = options.meterProvider;
    this.link = options.consumerSpans === 'link';
    this.settleSpans = options.settleSpans ?? true;
    // Instance methods the client calls: absent when their signal is off, so that nothing is called.
    if (this.tracer === undefined && !this.metered) {
      (this as { publish?: unknown }).publish = undefined;
      (this as { deliver?: unknown }).deliver = undefined;
    }
    if (!this.metered) (this as { event?: unknown }).event = undefined;
  }

  /**
   * The instruments, made at their first use rather than by `openTelemetry()`: the global meter
   * provider has no stand-in that forwards to one registered later (the tracer provider has), so a
   * module calling `openTelemetry()` before the SDK's set-up ran would otherwise measure nothing.
   */
  private get instruments(): Instruments | undefined {
    if (!this.metered) return undefined;
    this.made ??= new Instruments(
      (this.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME, VERSION),
    );
    return this.made;
  }

  publish(start: PublishStart): PublishProbe | undefined {
    const destination = destinationName(start.exchange, start.routingKey);
    const short = shortDestination(start.exchange, start.routingKey);
    const began = now();
    let span: Span | undefined;
    let properties: BasicProperties | undefined;
    const tracer = this.tracer;
    if (tracer !== undefined) {
      const parent = this.publishParent(start.properties);
      span = tracer.startSpan(
        `publish ${short}`,
        { kind: SpanKind.PRODUCER, attributes: publishAttributes(start, destination, short) },
        parent,
      );
      const carrier: Record<string, string> = {};
      this.propagator!.inject(trace.setSpan(parent, span), carrier, setter);
      if (Object.keys(carrier).length > 0) {
        const given = start.properties;
        properties = { ...given, headers: { ...given?.headers, ...carrier } };
      }
    }
    return new PublishSpan(span, properties, this.instruments, this.labels, short, start.peer.address, began);
  }

  deliver(start: DeliveryStart): DeliveryProbe | undefined {
    const fields = start.fields;
    const short = shortDestination(fields.exchange, fields.routingKey, start.queue);
    const instruments = this.instruments;
    const pulled = start.pulled;
    const operation = pulled ? 'receive' : 'process';
    const address = start.peer.address;
    instruments?.consumed.add(
      1,
      this.labels.get(`consumed\u0000${operation}\u0000${short}\u0000${address}`, () => ({
        'messaging.system': SYSTEM,
        'messaging.operation.name': operation,
        'messaging.destination.template': short,
        'server.address': address,
      })),
    );
    const tracer = this.tracer;
    if (tracer === undefined) {
      return new DeliverySpan(
        undefined,
        ROOT_CONTEXT,
        undefined,
        instruments,
        this.labels,
        '',
        short,
        start,
        now(),
      );
    }
    const destination = destinationName(fields.exchange, fields.routingKey, start.queue);
    const headers = start.properties.headers;
    const producer =
      headers === undefined ? undefined : this.propagator!.extract(ROOT_CONTEXT, headers, getter);
    const producerSpan = producer === undefined ? undefined : trace.getSpanContext(producer);
    const links: Link[] = [];
    let parent: Context;
    if (pulled) {
      // basic.get: a receive the caller made, in the caller's context; the producer is linked.
      parent = context.active();
      if (producerSpan !== undefined) links.push({ context: producerSpan });
    } else if (producerSpan !== undefined && !this.link) {
      parent = producer!;
    } else {
      parent = ROOT_CONTEXT;
      if (producerSpan !== undefined) links.push({ context: producerSpan });
    }
    const attributes: Attributes = {
      'messaging.system': SYSTEM,
      'messaging.operation.name': operation,
      'messaging.operation.type': operation,
      'messaging.destination.name': destination,
      'messaging.destination.template': short,
      'messaging.rabbitmq.message.delivery_tag': fields.deliveryTag,
      'messaging.message.body.size': start.bodySize,
      'server.address': address,
      'server.port': start.peer.port,
    };
    if (fields.routingKey !== '')
      attributes['messaging.rabbitmq.destination.routing_key'] = fields.routingKey;
    const { messageId, correlationId } = start.properties;
    if (messageId !== undefined) attributes['messaging.message.id'] = messageId;
    if (correlationId !== undefined) attributes['messaging.message.conversation_id'] = correlationId;
    if (fields.consumerTag !== undefined) attributes['rxamqp.consumer_tag'] = fields.consumerTag;
    if (fields.redelivered) attributes['rxamqp.redelivered'] = true;
    // A pull (basic.get) is a CLIENT call the application made; a push is the CONSUMER processing it.
    const span = tracer.startSpan(
      `${operation} ${short}`,
      { kind: pulled ? SpanKind.CLIENT : SpanKind.CONSUMER, attributes, links },
      parent,
    );
    return new DeliverySpan(
      span,
      trace.setSpan(parent, span),
      this.settleSpans ? tracer : undefined,
      instruments,
      this.labels,
      destination,
      short,
      start,
      now(),
    );
  }

  event(event: DiagnosticEvent): void {
    // Channel and consumer events have no metric of their own.
    if (!event.type.startsWith('connection.')) return;
    const instruments = this.instruments!;
    const record = this.record(event.lifetime);
    // A connection is a label only when named: unnamed ones (rxamqp-N) would add series forever.
    const name = UNNAMED.test(event.connection) ? undefined : event.connection;
    const labels = this.labels.get(`connection\u0000${name ?? ''}`, () =>
      name === undefined ? {} : { 'rxamqp.connection': name },
    );
    switch (event.type) {
      case 'connection.state': {
        const status = event.state.status;
        instruments.stateChanges.add(
          1,
          this.labels.get(`state\u0000${name ?? ''}\u0000${status}`, () => ({
            ...labels,
            'rxamqp.connection.state': status,
          })),
        );
        if (status === 'CONNECTED') {
          if (record.connectedBefore) instruments.reconnects.add(1, labels);
          record.connectedBefore = true;
        } else if (status !== 'CONNECTING') this.unblocked(record, labels);
        if (status === 'CLOSED') this.connections.delete(event.lifetime);
        break;
      }
      case 'connection.blocked':
        record.blockedSince ??= now();
        break;
      case 'connection.unblocked':
        this.unblocked(record, labels);
        break;
      default:
        break;
    }
  }

  private record(lifetime: number): ConnectionRecord {
    let record = this.connections.get(lifetime);
    if (record === undefined) {
      record = { connectedBefore: false, blockedSince: undefined };
      this.connections.set(lifetime, record);
    }
    return record;
  }

  private unblocked(record: ConnectionRecord, labels: Attributes): void {
    if (record.blockedSince === undefined) return;
    this.instruments!.blockedDuration.record((now() - record.blockedSince) / 1000, labels);
    record.blockedSince = undefined;
  }

  /**
   * The context a publish's span starts in: the active one when a span is active (the request that
   * publishes), else the one the message already carries (a message published again: a retry, a
   * forward), else a new trace.
   */
  private publishParent(properties: BasicProperties | undefined): Context {
    const active = context.active();
    if (trace.getSpanContext(active) !== undefined) return active;
    const headers = properties?.headers;
    if (headers === undefined) return active;
    const carried = this.propagator!.extract(active, headers, getter);
    return trace.getSpanContext(carried) === undefined ? active : carried;
  }
}

function publishAttributes(start: PublishStart, destination: string, short: string): Attributes {
  const attributes: Attributes = {
    'messaging.system': SYSTEM,
    'messaging.operation.name': 'publish',
    'messaging.operation.type': 'send',
    'messaging.destination.name': destination,
    'messaging.destination.template': short,
    'messaging.message.body.size': start.bodySize,
    'server.address': start.peer.address,
    'server.port': start.peer.port,
  };
  if (start.routingKey !== '') attributes['messaging.rabbitmq.destination.routing_key'] = start.routingKey;
  const messageId = start.properties?.messageId;
  const correlationId = start.properties?.correlationId;
  if (messageId !== undefined) attributes['messaging.message.id'] = messageId;
  if (correlationId !== undefined) attributes['messaging.message.conversation_id'] = correlationId;
  return attributes;
}

/** One publish followed: its span (when tracing) and its metrics. */
class PublishSpan implements PublishProbe {
  constructor(
    private readonly span: Span | undefined,
    readonly properties: BasicProperties | undefined,
    private readonly instruments: Instruments | undefined,
    private readonly labels: LabelCache,
    /** See `shortDestination`. */
    private readonly destination: string,
    private readonly address: string,
    private readonly began: number,
  ) {}

  end(outcome: PublishOutcome | undefined, error: Error | undefined): void {
    const status = outcome?.status ?? 'failed';
    const failure =
      outcome === undefined
        ? errorType(error ?? new Error('failed'))
        : status === 'nacked'
          ? 'nacked'
          : status === 'returned'
            ? 'returned'
            : undefined;
    const span = this.span;
    if (span !== undefined) {
      span.setAttribute('rxamqp.publish.outcome', status);
      if (outcome !== undefined && outcome.status !== 'sent')
        span.setAttribute('rxamqp.publish.seq', outcome.seq);
      if (outcome?.status === 'returned') {
        span.addEvent('returned', {
          'rxamqp.reply_code': outcome.returned.replyCode,
          'rxamqp.reply_text': outcome.returned.replyText,
        });
      }
      if (failure !== undefined) {
        span.setAttribute('error.type', failure);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          // The error's type, not its message: a connection error's message names the user and host.
          message:
            outcome === undefined
              ? `failed: ${failure}`
              : status === 'nacked'
                ? 'nacked by the broker'
                : 'returned unroutable',
        });
      }
      span.end();
    }
    const instruments = this.instruments;
    if (instruments !== undefined) {
      const { destination, address } = this;
      // error.type on the metrics as on the span: nacked, returned, or the failure's type.
      const sent = this.labels.get(
        `publish\u0000${destination}\u0000${address}\u0000${failure ?? ''}`,
        () => ({
          'messaging.system': SYSTEM,
          'messaging.operation.name': 'publish',
          'messaging.destination.template': destination,
          'server.address': address,
          ...(failure === undefined ? {} : { 'error.type': failure }),
        }),
      );
      const ended = this.labels.get(
        `outcome\u0000${destination}\u0000${address}\u0000${failure ?? ''}\u0000${status}`,
        () => ({ ...sent, 'rxamqp.publish.outcome': status }),
      );
      instruments.sent.add(1, sent);
      instruments.outcomes.add(1, ended);
      instruments.publishDuration.record((now() - this.began) / 1000, ended);
    }
  }
}

/** One delivery followed: its span (when tracing), its context, and its metrics. */
class DeliverySpan implements DeliveryProbe {
  /** A pull's (basic.get's) span ends once the application has the message. */
  private spanOpen: boolean;

  constructor(
    private readonly span: Span | undefined,
    private readonly context: Context,
    private readonly settleTracer: Tracer | undefined,
    private readonly instruments: Instruments | undefined,
    private readonly labels: LabelCache,
    /** See `destinationName` (empty without tracing). */
    private readonly destination: string,
    /** See `shortDestination`. */
    private readonly short: string,
    private readonly start: DeliveryStart,
    private readonly began: number,
  ) {
    this.spanOpen = span !== undefined;
  }

  run<T>(fn: () => T): T {
    if (this.span === undefined) return fn();
    try {
      return context.with(this.context, fn);
    } finally {
      if (this.start.pulled && this.spanOpen) {
        this.spanOpen = false;
        this.span.end();
      }
    }
  }

  end(how: DeliveryEnd, requeue: boolean, error?: Error): void {
    const span = this.span;
    const failure =
      how === 'nack' || how === 'reject'
        ? how
        : how === 'lost'
          ? error === undefined
            ? 'lost'
            : errorType(error)
          : undefined;
    if (span !== undefined) {
      if (how !== 'auto' && how !== 'lost' && this.settleTracer !== undefined) {
        this.settleTracer
          .startSpan(
            `${how} ${this.short}`,
            {
              kind: SpanKind.CLIENT,
              attributes: {
                'messaging.system': SYSTEM,
                'messaging.operation.name': how,
                'messaging.operation.type': 'settle',
                'messaging.destination.name': this.destination,
                'messaging.destination.template': this.short,
                'messaging.rabbitmq.message.delivery_tag': this.start.fields.deliveryTag,
                ...(how === 'ack' ? {} : { 'rxamqp.requeue': requeue }),
              },
            },
            this.context,
          )
          .end();
      }
      if (this.spanOpen) {
        this.spanOpen = false;
        span.setAttribute('rxamqp.settlement', how);
        if (how === 'nack' || how === 'reject') span.setAttribute('rxamqp.requeue', requeue);
        if (failure !== undefined) {
          span.setAttribute('error.type', failure);
          span.setStatus({
            code: SpanStatusCode.ERROR,
            message:
              how === 'lost'
                ? `lost before it was settled (${failure})`
                : `${how}ed${requeue ? ' (requeued)' : ''}`,
          });
        }
        span.end();
      }
    }
    const instruments = this.instruments;
    if (instruments !== undefined) {
      const short = this.short;
      const address = this.start.peer.address;
      const operation = this.start.pulled ? 'receive' : 'process';
      const labels = this.labels.get(
        `settle\u0000${operation}\u0000${short}\u0000${address}\u0000${how}`,
        () => ({
          'messaging.system': SYSTEM,
          'messaging.operation.name': operation,
          'messaging.destination.template': short,
          'server.address': address,
          'rxamqp.settlement': how,
          ...(how === 'nack' || how === 'reject' || how === 'lost' ? { 'error.type': how } : {}),
        }),
      );
      const counted =
        how === 'nack' || how === 'reject'
          ? this.labels.get(
              `settle\u0000${operation}\u0000${short}\u0000${address}\u0000${how}\u0000${requeue}`,
              () => ({
                ...labels,
                'rxamqp.requeue': requeue,
              }),
            )
          : labels;
      instruments.settlements.add(1, counted);
      // Processing time is a pushed delivery's (a pull's is the application's own affair).
      if (!this.start.pulled) instruments.processDuration.record((now() - this.began) / 1000, labels);
    }
  }
}

let ambientSet = false;

/**
 * An {@link Instrumentation} that reports to OpenTelemetry, for the `telemetry` option of `connect()`:
 *
 * - a `PRODUCER` span per publish (`publish <destination>`), ended at the broker's confirm on a
 *   confirm channel (when written otherwise), whose context goes in the message headers;
 * - a `CONSUMER` span per delivery (`process <destination>`, `receive` for `channel.get`), a child of
 *   the producer's span (or linked: `consumerSpans: 'link'`), ended at its settlement, with a short
 *   `ack` / `nack` / `reject` span under it; the delivery is handed to its subscribers inside it, and
 *   `ackOnSuccess` and the NestJS handlers run the handler inside it (`withinDelivery` for others);
 * - metrics: messages sent and their outcomes, publish-to-confirm time, deliveries, settlements,
 *   processing time, connection state changes, reconnects and blocked time.
 *
 * It reports to the global providers unless given others; register an SDK first. A publisher made
 * with `createPublisher` keeps each message's context while it holds it (disconnected).
 *
 * @example
 * ```ts
 * import { openTelemetry } from 'rxamqp/otel';
 * const connection$ = connect('amqp://localhost', { recovery: true, telemetry: openTelemetry() });
 * ```
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Instrumentation {
  checkOptions(options);
  if (!ambientSet && (options.tracing ?? true)) {
    ambientSet = true;
    setAmbientContext({
      detached: (fn) => context.with(ROOT_CONTEXT, fn),
      capture: () => context.active(),
      run: (captured, fn) => context.with(captured as Context, fn),
    });
  }
  return new OpenTelemetryInstrumentation(options);
}

function checkOptions(options: OpenTelemetryOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError('openTelemetry() options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new ConfigurationError(`openTelemetry() has no option '${key}'`);
  }
  for (const key of ['tracing', 'metrics', 'settleSpans'] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new ConfigurationError(`openTelemetry() option ${key} must be a boolean`);
    }
  }
  const spans = options.consumerSpans;
  if (spans !== undefined && spans !== 'parent' && spans !== 'link') {
    throw new ConfigurationError(`openTelemetry() option consumerSpans must be 'parent' or 'link'`);
  }
  if (options.tracerProvider !== undefined && typeof options.tracerProvider?.getTracer !== 'function') {
    throw new ConfigurationError('openTelemetry() option tracerProvider must have getTracer()');
  }
  if (options.meterProvider !== undefined && typeof options.meterProvider?.getMeter !== 'function') {
    throw new ConfigurationError('openTelemetry() option meterProvider must have getMeter()');
  }
  if (
    options.propagator !== undefined &&
    (typeof options.propagator?.inject !== 'function' || typeof options.propagator?.extract !== 'function')
  ) {
    throw new ConfigurationError('openTelemetry() option propagator must have inject() and extract()');
  }
}

const KNOWN = new Set<string>([
  'tracerProvider',
  'meterProvider',
  'propagator',
  'tracing',
  'metrics',
  'consumerSpans',
  'settleSpans',
]);
