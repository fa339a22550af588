import fc from 'fast-check';
import { type Connection, connect } from '../../src/node.js';
import type { MethodInit } from '../../src/protocol/index.js';
import { ScriptedServer } from '../support/scripted-server.js';

/** What the hostile server does after the handshake and channel.open. */
type Misdeed =
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'method'; channel: number; method: MethodInit }
  | { kind: 'reset' }
  | { kind: 'end' }
  | { kind: 'close'; code: number }
  | { kind: 'channel-close'; code: number }
  | { kind: 'wait'; ms: number };

const arbMisdeed: fc.Arbitrary<Misdeed> = fc.oneof(
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({
    kind: fc.constant('method' as const),
    channel: fc.integer({ min: 0, max: 3 }),
    method: fc.constantFrom<MethodInit>(
      { name: 'queue.declare-ok', queue: 'q', messageCount: 0, consumerCount: 0 },
      { name: 'basic.qos-ok' },
      { name: 'channel.open-ok' },
      { name: 'connection.tune', channelMax: 1, frameMax: 4096, heartbeat: 1 },
      { name: 'basic.ack', deliveryTag: 99 },
      { name: 'connection.blocked', reason: 'low on memory' },
      { name: 'channel.flow', active: false },
      { name: 'basic.cancel', consumerTag: 'nope' },
    ),
  }),
  fc.constant({ kind: 'reset' as const }),
  fc.constant({ kind: 'end' as const }),
  fc.record({ kind: fc.constant('close' as const), code: fc.constantFrom(320, 501, 541) }),
  fc.record({ kind: fc.constant('channel-close' as const), code: fc.constantFrom(404, 406) }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 20 }) }),
);

describe('robustness', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
  });

  it('settles every operation and never leaks an unhandled error, whatever the server does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(arbMisdeed, { minLength: 1, maxLength: 6 }), async (misdeeds) => {
        const server = await ScriptedServer.start(
          async (peer) => {
            await peer.expectProtocolHeader();
            await peer.handshake();
            await peer.expect('channel.open');
            peer.send(1, { name: 'channel.open-ok' });
            for (const m of misdeeds) {
              switch (m.kind) {
                case 'garbage':
                  peer.sendRaw(m.bytes);
                  break;
                case 'method':
                  peer.send(m.channel, m.method);
                  break;
                case 'reset':
                  peer.destroy();
                  return;
                case 'end':
                  peer.end();
                  return;
                case 'close':
                  peer.send(0, {
                    name: 'connection.close',
                    replyCode: m.code,
                    replyText: 'bye',
                    classId: 0,
                    methodId: 0,
                  });
                  break;
                case 'channel-close':
                  peer.send(1, {
                    name: 'channel.close',
                    replyCode: m.code,
                    replyText: 'no',
                    classId: 50,
                    methodId: 10,
                  });
                  break;
                case 'wait':
                  await new Promise((r) => setTimeout(r, m.ms));
                  break;
              }
            }
            await new Promise((r) => setTimeout(r, 30));
            peer.destroy();
          },
          { maxConnections: 1 },
        );
        try {
          const settled: string[] = [];
          let connection: Connection | undefined;
          const ended = new Promise<void>((resolve) => {
            connect({
              hostname: '127.0.0.1',
              port: server.port,
              connectionTimeout: 2000,
              closeTimeout: 200,
            }).subscribe({
              next: (c) => {
                connection = c;
                c.channel().subscribe({
                  next: (ch) => {
                    const ops = [
                      ch.queueDeclare('q'),
                      ch.qos(5),
                      ch.publish('', 'q', 'x'),
                      ch.get('q'),
                      ch.exchangeDeclare('e', 'direct', { nowait: true }),
                    ];
                    for (const op of ops) {
                      (op as import('rxjs').Observable<unknown>).subscribe({
                        error: () => settled.push('error'),
                        complete: () => settled.push('complete'),
                      });
                    }
                    ch.ack(1);
                  },
                  error: () => {},
                });
              },
              error: () => resolve(),
              complete: () => resolve(),
            });
          });
          await ended;
          // Every operation that was started has settled one way or the other.
          await new Promise((r) => setTimeout(r, 10));
          if (connection !== undefined) expect(connection.isOpen).toBe(false);
          expect(settled.length === 0 || settled.length === 5).toBe(true);
        } finally {
          await server.close();
        }
      }),
      { numRuns: 40 },
    );
    expect(unhandled).toEqual([]);
  }, 120_000);
});
