/**
 * A custom connector through the whole client: `connect()` with a URL of a scheme rxamqp does not
 * open itself (`memory:`), the connector given in `transport` carrying the bytes (here over TCP to a
 * scripted broker, standing in for any other byte stream). The vhost comes from the query, not the
 * path; the connector sees the URL's host and port.
 */
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  ConnectionClosedError,
  connect,
  type TransportConnector,
  type TransportTarget,
} from '../../src/index.js';
import { connectTcp } from '../../src/transport/index.js';
import { type HandshakeResult, ScriptedServer } from '../support/scripted-server.js';

describe('a custom connector', () => {
  let server: ScriptedServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('carries a connection for a memory: URL, whose vhost comes from the query', async () => {
    let handshake: HandshakeResult | undefined;
    const scripted = await ScriptedServer.start(async (peer) => {
      handshake = await peer.handshake();
      await peer.expect('connection.close');
      peer.send(0, { name: 'connection.close-ok' });
    });
    server = scripted;
    const targets: TransportTarget[] = [];
    const viaScriptedServer: TransportConnector = (target, handler, signal) => {
      targets.push(target);
      return connectTcp({ ...target, hostname: '127.0.0.1', port: scripted.port }, handler, signal);
    };

    const connection$ = connect('memory://app:pw@broker:7/not-a-vhost?vhost=orders&heartbeat=30', {
      transport: viaScriptedServer,
    });
    const connection = await firstValueFrom(connection$); // firstValueFrom unsubscribes: the client closes
    expect(connection).toBeDefined();
    await scripted.done();

    expect(handshake?.open.virtualHost).toBe('orders');
    expect(handshake?.tuneOk.heartbeat).toBe(30); // the AMQP query parameters still apply
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({ hostname: 'broker', port: 7, tls: undefined });
  });

  it('reports a plain rejection of the connector as a lost connection, with it as the cause', async () => {
    const failure = new Error('gateway refused');
    const refusing: TransportConnector = () => Promise.reject(failure);
    const error = await firstValueFrom(connect('memory:', { transport: refusing })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as ConnectionClosedError).code).toBe('CONNECTION_LOST');
    expect((error as ConnectionClosedError).cause).toBe(failure);
  });

  it("keeps the broker's close reason when the transport's destroy() calls onClose at once", async () => {
    // The seam allows onClose from inside destroy() (the WebSocket transport does it): the connection
    // must end with the broker's connection.close, not with a vaguer "closed by the peer".
    const scripted = await ScriptedServer.start(async (peer) => {
      await peer.handshake();
      peer.send(0, {
        name: 'connection.close',
        replyCode: 320,
        replyText: 'CONNECTION_FORCED - closed via management plugin',
        classId: 0,
        methodId: 0,
      });
      await peer.expect('connection.close-ok');
    });
    server = scripted;
    const synchronousClose: TransportConnector = async (target, handler, signal) => {
      const inner = await connectTcp(
        { ...target, hostname: '127.0.0.1', port: scripted.port },
        handler,
        signal,
      );
      let closed = false;
      return Object.assign(Object.create(inner) as typeof inner, {
        write: (chunk: Uint8Array) => inner.write(chunk),
        end: () => inner.end(),
        destroy: () => {
          inner.destroy();
          if (!closed) {
            closed = true;
            handler.onClose(undefined);
          }
        },
      });
    };
    // connect() emits the connection, then errors with what closed it.
    const error = await lastValueFrom(connect('memory://broker:7', { transport: synchronousClose })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({
      code: 'SERVER_CLOSED',
      replyCode: 320,
      replyText: 'CONNECTION_FORCED - closed via management plugin',
    });
  });

  it.each([
    ['without', {}],
    ['with', { credentials: () => Promise.resolve({ password: 'token' }) }],
  ])(
    'fails with a typed error, %s a credentials provider, when the connector returns no Promise (a factory passed uncalled)',
    async (_with, extra) => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => {
        unhandled.push(reason);
      };
      process.on('unhandledRejection', onUnhandled);
      try {
        const factory = (() =>
          (() => Promise.reject(new Error('not used'))) as TransportConnector) as unknown;
        const error = await firstValueFrom(
          connect('memory://broker:7', { transport: factory as TransportConnector, ...extra }),
        ).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConnectionClosedError);
        expect((error as ConnectionClosedError).code).toBe('CONNECTION_LOST');
        expect((error as Error).message).toMatch(
          /the transport connector returned function, not a Promise of a Transport \(a connector factory such as webSocketConnector must be called: webSocketConnector\(\)\)$/,
        );
        await new Promise((resolve) => setTimeout(resolve, 10));
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    },
  );
});
