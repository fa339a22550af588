/**
 * A custom transport: a TransportConnector written from scratch over a node:net socket, which logs
 * what it does and counts the bytes each way. The same shape carries AMQP over a WebSocket, a test's
 * in-memory pipe or anything else that moves bytes in order (docs/transports.md has the contract).
 *
 *   npx tsx examples/custom-transport.ts     # the broker is AMQP_URL, or amqp://guest:guest@127.0.0.1:5672
 */
import { connect as netConnect } from 'node:net';
import { ConnectionClosedError, connect, type Transport, type TransportConnector } from 'rxamqp';
import { switchMap, take, tap, timeout } from 'rxjs';

const loggingTcp: TransportConnector = (target, handler, signal) =>
  new Promise<Transport>((resolve, reject) => {
    // TLS asked for and not implemented here: refuse rather than send the credentials in clear text.
    if (target.tls !== undefined) throw new Error('this example transport does not do TLS');
    // target.url never holds the password: safe to log.
    console.log(`[transport] connecting to ${target.url}`);
    // write() must return false once writeHighWaterMark bytes wait (that is how backpressure reaches
    // publishers): the socket's own high-water mark does it.
    const options = {
      host: target.hostname,
      port: target.port,
      writableHighWaterMark: target.writeHighWaterMark,
    };
    const socket = netConnect(options);
    let sent = 0;
    let received = 0;

    // The connection gives up (its timeout, an unsubscribe): drop the attempt, reject with its reason.
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // A failed attempt: a ConnectionClosedError is passed on as it is (anything else gets wrapped).
    const onConnectError = (error: Error): void => {
      signal.removeEventListener('abort', onAbort);
      const message = `could not connect to ${target.hostname}:${target.port}: ${error.message}`;
      reject(new ConnectionClosedError('CONNECTION_LOST', message, { initiator: 'network', cause: error }));
    };
    socket.once('error', onConnectError);

    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onConnectError);
      socket.setNoDelay(target.socket.noDelay);
      // From now on every event goes to the handler. onClose comes exactly once, with the error that
      // closed the socket (undefined for an orderly end): 'error' is always followed by 'close'.
      let closeError: Error | undefined;
      socket.on('error', (error) => {
        closeError ??= error;
      });
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        handler.onData(chunk); // a Buffer is a Uint8Array
      });
      socket.on('drain', () => handler.onDrain());
      socket.once('close', () => {
        console.log(
          `[transport] closed after ${sent} bytes out, ${received} in (${closeError?.message ?? 'no error'})`,
        );
        handler.onClose(closeError);
      });
      resolve({
        write: (chunk) => {
          sent += chunk.length;
          return socket.write(chunk); // false: wait for onDrain
        },
        end: () => socket.end(), // flush what is queued, then close
        destroy: () => socket.destroy(), // close now; 'close' still calls onClose
        get bufferedBytes() {
          return socket.writableLength;
        },
        remote: `${target.hostname}:${target.port}`,
        secure: false,
      });
    });
  });

const url = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';

// Everything else is ordinary rxamqp: the transport option is the only change.
connect(url, { transport: loggingTcp })
  .pipe(
    switchMap((conn) => conn.channel()),
    switchMap((ch) => ch.queueDeclare('', { exclusive: true })),
    tap((ok) => console.log(`declared ${ok.queue} over the custom transport`)),
    take(1), // unsubscribing closes the connection: the transport logs its close
    timeout(10_000),
  )
  .subscribe({
    error: (e: unknown) => {
      console.error(`custom transport example failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  });
