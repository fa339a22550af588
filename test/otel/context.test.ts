/**
 * `rxamqp/otel`'s trace contexts where the client's own callbacks start user code (scripted server,
 * the OpenTelemetry SDK in memory): a chain of publishes (`concatMap`) stays in the request that
 * started it, never in the context that happened to open the connection; with queued deliveries,
 * what `answerRequests` and `ackOnSuccess` start after an async handler (a reply, a publish further
 * on) belongs to the delivery it came from.
 */
import { context, trace } from '@opentelemetry/api';
import { concatMap, from, lastValueFrom, mergeMap, type Subscription } from 'rxjs';
import { ackOnSuccess, answerRequests } from '../../operators/index.js';
import { type BasicProperties, type Channel, type Connection, openConnection } from '../../src/node.js';
import { openTelemetry } from '../../src/otel/index.js';
import { installTracing } from '../support/otel.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';
import { until } from '../support/until.js';

const { exporter, tracerProvider, stop } = installTracing();
const app = tracerProvider.getTracer('app');
const telemetry = openTelemetry({ tracerProvider, metrics: false });

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  exporter.reset();
});
afterAll(() => stop());

/** Answers what the client sends until it closes: confirms publishes after confirm.select, closes on request. */
async function serve(peer: ScriptedPeer, channelOpen = true): Promise<void> {
  let seq = 0;
  let confirming = false;
  for (;;) {
    const e = await peer.next();
    if (e.kind === 'heartbeat') continue;
    const name = e.method.name;
    if (name === 'channel.open' && channelOpen) peer.send(e.channel, { name: 'channel.open-ok' });
    else if (name === 'confirm.select') {
      confirming = true;
      peer.send(e.channel, { name: 'confirm.select-ok' });
    } else if (name === 'basic.publish' && confirming) {
      seq++;
      peer.send(e.channel, { name: 'basic.ack', deliveryTag: seq, multiple: false });
    } else if (name === 'basic.cancel') peer.send(e.channel, { name: 'basic.cancel-ok', consumerTag: 'c' });
    else if (name === 'channel.close') peer.send(e.channel, { name: 'channel.close-ok' });
    else if (name === 'connection.close') {
      peer.send(0, { name: 'connection.close-ok' });
      return;
    }
  }
}

const parentName = (spanId: string | undefined): string =>
  exporter.getFinishedSpans().find((s) => s.spanContext().spanId === spanId)?.name ?? '(root)';

it('keeps a chain of confirmed publishes in the request that started it, not in the one that connected', async () => {
  server = await ScriptedServer.start(
    async (peer) => {
      await peer.handshake();
      await serve(peer);
    },
    { maxConnections: 1 },
  );
  const opener = app.startSpan('first request (opened the connection)');
  const connection = await context.with(trace.setSpan(context.active(), opener), () =>
    openConnection({ hostname: '127.0.0.1', port: server!.port, telemetry }),
  );
  opener.end();
  const channel = await connection.openChannel();
  await lastValueFrom(channel.confirmSelect());
  const request = app.startSpan('POST /batch');
  await context.with(trace.setSpan(context.active(), request), () =>
    lastValueFrom(from(['a', 'b', 'c']).pipe(concatMap((key) => channel.publish('ex', key, key)))),
  );
  request.end();
  await lastValueFrom(connection.close());
  await server.done();
  const parents = exporter
    .getFinishedSpans()
    .filter((s) => s.name === 'publish ex')
    .map((s) => parentName(s.parentSpanContext?.spanId));
  expect(parents).toEqual(['POST /batch', 'POST /batch', 'POST /batch']);
});

describe('queued deliveries with async handlers (concurrency 1)', () => {
  const T1 = '11111111111111111111111111111111';
  const T2 = '22222222222222222222222222222222';
  const traceparent = (t: string) => `00-${t}-aaaaaaaaaaaaaaaa-01`;

  function deliver(peer: ScriptedPeer, tag: number, properties: BasicProperties): void {
    peer.sendContent(
      1,
      {
        name: 'basic.deliver',
        consumerTag: 'c',
        deliveryTag: tag,
        redelivered: false,
        exchange: '',
        routingKey: 'rpc',
      },
      properties,
      Buffer.from('x'),
    );
  }

  async function twoRequests(peer: ScriptedPeer): Promise<void> {
    await peer.handshake();
    await peer.expect('channel.open', { channel: 1 });
    peer.send(1, { name: 'channel.open-ok' });
    await peer.expect('basic.consume', { channel: 1 });
    peer.send(1, { name: 'basic.consume-ok', consumerTag: 'c' });
    deliver(peer, 1, { replyTo: 'reply-a', correlationId: 'a', headers: { traceparent: traceparent(T1) } });
    deliver(peer, 2, { replyTo: 'reply-b', correlationId: 'b', headers: { traceparent: traceparent(T2) } });
    await serve(peer, false);
  }

  async function open(): Promise<{ connection: Connection; channel: Channel }> {
    const connection = await openConnection({
      hostname: '127.0.0.1',
      port: server!.port,
      ackDelay: 0,
      telemetry,
    });
    return { connection, channel: await connection.openChannel() };
  }

  const publishTraces = () =>
    exporter
      .getFinishedSpans()
      .filter((s) => s.name.startsWith('publish'))
      .map((s) => `${s.name} ${s.spanContext().traceId.slice(0, 4)}`)
      .sort();

  it('answerRequests replies to each request in its own trace', async () => {
    server = await ScriptedServer.start(twoRequests, { maxConnections: 1 });
    const { connection, channel } = await open();
    const replies: unknown[] = [];
    const subscription: Subscription = channel
      .consume('rpc')
      .pipe(
        answerRequests(
          channel,
          async (request) => {
            await new Promise((r) => setTimeout(r, 20));
            return request.properties.correlationId;
          },
          { concurrency: 1 },
        ),
      )
      .subscribe((r) => replies.push(r));
    await until(() => replies.length === 2, 3000, 'two replies');
    subscription.unsubscribe();
    await lastValueFrom(connection.close());
    await server.done();
    expect(publishTraces()).toEqual(['publish reply-a 1111', 'publish reply-b 2222']);
  });

  it('ackOnSuccess hands each result on in its own trace (a publish further on)', async () => {
    server = await ScriptedServer.start(twoRequests, { maxConnections: 1 });
    const { connection, channel } = await open();
    const done: unknown[] = [];
    const subscription: Subscription = channel
      .consume('rpc')
      .pipe(
        ackOnSuccess(
          async (d) => {
            await new Promise((r) => setTimeout(r, 20));
            return d.properties.replyTo!;
          },
          { concurrency: 1 },
        ),
        mergeMap((to) => channel.publish('', to, 'done')),
      )
      .subscribe((r) => done.push(r));
    await until(() => done.length === 2, 3000, 'two publishes');
    subscription.unsubscribe();
    await lastValueFrom(connection.close());
    await server.done();
    expect(publishTraces()).toEqual(['publish reply-a 1111', 'publish reply-b 2222']);
  });
});
