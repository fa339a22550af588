/**
 * `diagnostics$` through a scripted connection's life: connection states, channels opened and closed
 * (by the client, and by the broker with its error), consumers started and ended (by the broker, by
 * unsubscribing), the broker's blocked / unblocked; the same events reach the `telemetry`
 * instrumentation's `event` and Node's `node:diagnostics_channel` channels.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { config, filter, lastValueFrom, type Subscription } from 'rxjs';
import {
  ChannelClosedError,
  type Connection,
  type ConnectOptions,
  ConsumerCancelledError,
  DIAGNOSTICS_CHANNELS,
  type DiagnosticEvent,
  diagnostics$,
  type Instrumentation,
  openConnection,
} from '../../src/node.js';
import type { Method, MethodName } from '../../src/protocol/index.js';
import { diagnosticsObserved } from '../../src/telemetry/diagnostics.js';
import { nodeDiagnosticSink } from '../../src/telemetry/node-diagnostics.js';
import { type ScriptedPeer, ScriptedServer } from '../support/scripted-server.js';
import { until } from '../support/until.js';

let server: ScriptedServer | undefined;
const subscriptions: Subscription[] = [];

afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe();
  await server?.close();
  server = undefined;
});

/** The events of connection `name` on `diagnostics$`, collected while the test runs. */
function listen(name: string): DiagnosticEvent[] {
  const events: DiagnosticEvent[] = [];
  subscriptions.push(
    diagnostics$.pipe(filter((e) => e.connection === name)).subscribe((e) => {
      events.push(e);
    }),
  );
  return events;
}

/** An event as a short line, without `connection` and `time`. */
function line(e: DiagnosticEvent): string {
  switch (e.type) {
    case 'connection.state':
      return `state ${e.state.status}`;
    case 'connection.blocked':
      return `blocked ${e.reason}`;
    case 'connection.unblocked':
      return 'unblocked';
    case 'channel.open':
      return `channel.open ${e.channel}`;
    case 'channel.close':
      return `channel.close ${e.channel}${e.error === undefined ? '' : ` ${e.error.replyCode}`}`;
    case 'consumer.start':
      return `consumer.start ${e.channel} ${e.queue} ${e.consumerTag}`;
    case 'consumer.end':
      return `consumer.end ${e.channel} ${e.queue} ${e.consumerTag}${e.byBroker ? ' by broker' : ''}`;
  }
}

/** The next method named `name`, skipping the others the client sends (cancel-ok, say). */
async function nextMethod<N extends MethodName>(
  peer: ScriptedPeer,
  name: N,
): Promise<{ channel: number; method: Method }> {
  for (;;) {
    const event = await peer.next();
    if (event.kind !== 'heartbeat' && event.method.name === name)
      return { channel: event.channel, method: event.method };
  }
}

/** Answers channel.close and connection.close until the client has closed the connection. */
async function serveUntilClosed(peer: ScriptedPeer): Promise<void> {
  for (;;) {
    const event = await peer.next();
    if (event.kind === 'heartbeat') continue;
    if (event.method.name === 'channel.close') peer.send(event.channel, { name: 'channel.close-ok' });
    else if (event.method.name === 'connection.close') {
      peer.send(0, { name: 'connection.close-ok' });
      return;
    }
  }
}

/** A connection that opens, opens a channel, and closes everything. */
async function simpleScript(peer: ScriptedPeer): Promise<void> {
  await peer.handshake();
  const { channel } = await nextMethod(peer, 'channel.open');
  peer.send(channel, { name: 'channel.open-ok' });
  await serveUntilClosed(peer);
}

function options(extra: ConnectOptions = {}): ConnectOptions {
  return { hostname: '127.0.0.1', port: server!.port, connectionTimeout: 3000, ...extra };
}

async function openAndClose(extra: ConnectOptions = {}): Promise<void> {
  const connection = await openConnection(options(extra));
  const channel = await connection.openChannel();
  await lastValueFrom(channel.close());
  await lastValueFrom(connection.close());
}

describe('diagnostics$', () => {
  it('tells the life of a connection, its channels and consumers, with the same events to event() and Node channels', async () => {
    server = await ScriptedServer.start(
      async (peer) => {
        await peer.handshake();
        await peer.expect('channel.open', { channel: 1 });
        peer.send(1, { name: 'channel.open-ok' });
        // A consumer the broker cancels.
        await nextMethod(peer, 'basic.consume');
        peer.send(1, { name: 'basic.consume-ok', consumerTag: 'ctag-1' });
        peer.send(1, { name: 'basic.cancel', consumerTag: 'ctag-1', nowait: true });
        // A consumer the client cancels.
        await nextMethod(peer, 'basic.consume');
        peer.send(1, { name: 'basic.consume-ok', consumerTag: 'ctag-2' });
        await nextMethod(peer, 'basic.cancel');
        peer.send(1, { name: 'basic.cancel-ok', consumerTag: 'ctag-2' });
        // A resource alarm, then the broker closes the channel.
        peer.send(0, { name: 'connection.blocked', reason: 'low on memory' });
        peer.send(0, { name: 'connection.unblocked' });
        peer.send(1, {
          name: 'channel.close',
          replyCode: 404,
          replyText: "NOT_FOUND - no queue 'nope'",
          classId: 50,
          methodId: 10,
        });
        await peer.expect('channel.close-ok', { channel: 1 });
        // Another channel, closed by the client, then the connection.
        const { channel } = await nextMethod(peer, 'channel.open');
        peer.send(channel, { name: 'channel.open-ok' });
        await serveUntilClosed(peer);
      },
      { maxConnections: 1 },
    );
    const name = 'diag-lifecycle';
    const events = listen(name);
    const told: DiagnosticEvent[] = [];
    const instrumentation: Instrumentation = { event: (e) => told.push(e) };
    const onNode: [string, DiagnosticEvent][] = [];
    const handlers = Object.values(DIAGNOSTICS_CHANNELS).map((channelName) => {
      const handler = (message: unknown): void => {
        const event = message as DiagnosticEvent;
        if (event.connection === name) onNode.push([channelName, event]);
      };
      diagnosticsChannel.subscribe(channelName, handler);
      return () => diagnosticsChannel.unsubscribe(channelName, handler);
    });
    const started = Date.now();
    let connection: Connection | undefined;
    try {
      connection = await openConnection(options({ name, telemetry: instrumentation }));
      const channel = await connection.openChannel();
      const seen = (text: string) => until(() => events.map(line).includes(text), 5000, text);

      let firstEnded: unknown;
      channel.consume('q1').subscribe({ error: (e: unknown) => (firstEnded = e) });
      await seen('consumer.end 1 q1 ctag-1 by broker');
      expect(firstEnded).toBeInstanceOf(ConsumerCancelledError);

      const second = channel.consume('q2').subscribe();
      await seen('consumer.start 1 q2 ctag-2');
      second.unsubscribe();
      expect(events.map(line)).toContain('consumer.end 1 q2 ctag-2');

      await seen('channel.close 1 404');
      const other = await connection.openChannel();
      await lastValueFrom(other.close());
      await lastValueFrom(connection.close());
      await server.done();
    } finally {
      for (const unsubscribe of handlers) unsubscribe();
    }
    const ended = Date.now();

    expect(events.map(line)).toEqual([
      'state CONNECTING',
      'state CONNECTED',
      'channel.open 1',
      'consumer.start 1 q1 ctag-1',
      'consumer.end 1 q1 ctag-1 by broker',
      'consumer.start 1 q2 ctag-2',
      'consumer.end 1 q2 ctag-2',
      'blocked low on memory',
      'unblocked',
      'channel.close 1 404',
      expect.stringMatching(/^channel\.open \d+$/),
      expect.stringMatching(/^channel\.close \d+$/),
      'state CLOSING',
      'state CLOSED',
    ]);
    for (const e of events) {
      expect(e.connection).toBe(name);
      expect(typeof e.time).toBe('number');
      expect(e.time).toBeGreaterThanOrEqual(started);
      expect(e.time).toBeLessThanOrEqual(ended);
    }
    const times = events.map((e) => e.time);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    // The broker's close carries its error; the client's carries none.
    const closes = events.filter((e) => e.type === 'channel.close');
    expect(closes[0]!.error).toBeInstanceOf(ChannelClosedError);
    expect(closes[0]!.error).toMatchObject({ replyCode: 404, channel: 1 });
    expect(closes[1]!.error).toBeUndefined();
    const states = events.filter((e) => e.type === 'connection.state');
    expect(states[1]!.state).toMatchObject({ status: 'CONNECTED', host: `127.0.0.1:${server.port}` });

    // The instrumentation heard the same events, as did Node's channels, each on its own.
    expect(told).toEqual(events);
    expect(onNode.map(([, e]) => e)).toEqual(events);
    for (const [channelName, e] of onNode) {
      const kind = e.type.slice(0, e.type.indexOf('.')) as keyof typeof DIAGNOSTICS_CHANNELS;
      expect(channelName).toBe(DIAGNOSTICS_CHANNELS[kind]);
    }
    expect(nodeDiagnosticSink.active()).toBe(false);
  });

  it('names a connection without a name rxamqp-N, a different N for each lifetime', async () => {
    server = await ScriptedServer.start([simpleScript, simpleScript]);
    const all: DiagnosticEvent[] = [];
    subscriptions.push(diagnostics$.subscribe((e) => all.push(e)));
    await openAndClose();
    await openAndClose();
    await server.done();
    const labels = [...new Set(all.map((e) => e.connection))].filter((l) => l.startsWith('rxamqp-'));
    expect(labels).toHaveLength(2);
    for (const label of labels) expect(label).toMatch(/^rxamqp-\d+$/);
    for (const label of labels) {
      expect(all.filter((e) => e.connection === label).map(line)).toEqual([
        'state CONNECTING',
        'state CONNECTED',
        'channel.open 1',
        'channel.close 1',
        'state CLOSING',
        'state CLOSED',
      ]);
    }
  });

  it('stops telling a subscriber that unsubscribed, and goes on telling the others', async () => {
    server = await ScriptedServer.start(simpleScript, { maxConnections: 1 });
    const name = 'diag-unsubscribe';
    const kept = listen(name);
    const left: DiagnosticEvent[] = [];
    const leaving = diagnostics$.subscribe((e) => {
      if (e.connection === name) left.push(e);
    });
    const connection = await openConnection(options({ name }));
    leaving.unsubscribe();
    const channel = await connection.openChannel();
    await lastValueFrom(channel.close());
    await lastValueFrom(connection.close());
    await server.done();
    expect(left.map(line)).toEqual(['state CONNECTING', 'state CONNECTED']);
    expect(kept.map(line)).toEqual([
      'state CONNECTING',
      'state CONNECTED',
      'channel.open 1',
      'channel.close 1',
      'state CLOSING',
      'state CLOSED',
    ]);
  });

  it('keeps a subscriber that throws from the client and from the other subscribers', async () => {
    // What a subscriber's next throws, RxJS reports as unhandled (config.onUnhandledError), out of
    // emitDiagnostic's reach: captured here instead of failing the test run.
    server = await ScriptedServer.start(simpleScript, { maxConnections: 1 });
    const unhandled: unknown[] = [];
    const previous = config.onUnhandledError;
    config.onUnhandledError = (e) => unhandled.push(e);
    try {
      const name = 'diag-throws';
      subscriptions.push(
        diagnostics$.subscribe((e) => {
          if (e.connection === name) throw new Error('subscriber boom');
        }),
      );
      const events = listen(name);
      await openAndClose({ name });
      await server.done();
      expect(events.map(line)).toEqual([
        'state CONNECTING',
        'state CONNECTED',
        'channel.open 1',
        'channel.close 1',
        'state CLOSING',
        'state CLOSED',
      ]);
      await until(() => unhandled.length === 6, 5000, 'six unhandled errors');
      expect(unhandled.map((e) => (e as Error).message)).toEqual(Array(6).fill('subscriber boom'));
    } finally {
      config.onUnhandledError = previous;
    }
  });
});

describe("Node's diagnostics channels", () => {
  it('are listened to only while someone subscribes, and get the events then', async () => {
    expect(nodeDiagnosticSink.active()).toBe(false);
    expect(diagnosticsObserved()).toBe(false);

    const got: string[] = [];
    const handler = (message: unknown): void => {
      const event = message as DiagnosticEvent;
      if (event.connection === 'diag-node') got.push(line(event));
    };
    diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.consumer, handler);
    expect(nodeDiagnosticSink.active()).toBe(true);
    expect(diagnosticsObserved()).toBe(true);
    diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.consumer, handler);
    expect(nodeDiagnosticSink.active()).toBe(false);

    diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.channel, handler);
    try {
      server = await ScriptedServer.start(simpleScript, { maxConnections: 1 });
      await openAndClose({ name: 'diag-node' });
      await server.done();
    } finally {
      diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.channel, handler);
    }
    // Only the channel's events: nobody listened on rxamqp:connection.
    expect(got).toEqual(['channel.open 1', 'channel.close 1']);
    expect(nodeDiagnosticSink.active()).toBe(false);

    const sub = diagnostics$.subscribe(() => {});
    expect(diagnosticsObserved()).toBe(true);
    sub.unsubscribe();
    expect(diagnosticsObserved()).toBe(false);
  });

  it('name their channels', () => {
    expect(DIAGNOSTICS_CHANNELS).toEqual({
      connection: 'rxamqp:connection',
      channel: 'rxamqp:channel',
      consumer: 'rxamqp:consumer',
    });
    expect(Object.isFrozen(DIAGNOSTICS_CHANNELS)).toBe(true);
  });
});
