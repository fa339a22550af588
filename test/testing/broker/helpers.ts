/** Shared helpers of the embedded broker's tests: a connection to a fresh broker, and waiting. */
import { lastValueFrom, type Observable, take, toArray } from 'rxjs';
import type { ConnectOptions } from '../../../src/config/options.js';
import { type Channel, type Connection, openConnection } from '../../../src/index.js';
import { EmbeddedBroker, type EmbeddedBrokerOptions } from '../../../src/testing/index.js';

export { EmbeddedBroker };

/** Opens a connection to `broker` (guest/guest on `/` unless the URL says otherwise). */
export function connectTo(
  broker: EmbeddedBroker,
  url = 'amqp://guest:guest@embedded',
  options: ConnectOptions = {},
): Promise<Connection> {
  return openConnection(url, { transport: broker.connector, ...options });
}

/** A broker, a connection and a channel on it. */
export async function setup(
  options: EmbeddedBrokerOptions = {},
  connectOptions: ConnectOptions = {},
): Promise<{ broker: EmbeddedBroker; conn: Connection; ch: Channel }> {
  const broker = new EmbeddedBroker(options);
  const conn = await connectTo(broker, undefined, connectOptions);
  const ch = await conn.openChannel();
  return { broker, conn, ch };
}

/** The first `n` values of an Observable. */
export function first<T>(source: Observable<T>, n: number): Promise<T[]> {
  return lastValueFrom(source.pipe(take(n), toArray()));
}

/** Waits for the Promise job queue and a macrotask to drain (lets the in-memory link deliver). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Text of a body. */
export function text(body: Uint8Array): string {
  return new TextDecoder().decode(body);
}

/** The error a promise rejects with. */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}
