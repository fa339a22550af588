/**
 * Opens a connection and a channel for a test and keeps them until `close()`: the usual shape of the
 * real-broker tests, written once.
 */
import { firstValueFrom, type Observable, ReplaySubject, type Subscription } from 'rxjs';
import { type Channel, type Connection, type ConnectOptions, connect } from '../../src/node.js';
import { brokerUrl } from './broker.js';

export interface Session {
  readonly connection: Connection;
  readonly channel: Channel;
  /** Errors and completion of the connection Observable. */
  readonly connectionEvents: ReplaySubject<'complete' | Error>;
  /** Errors and completion of the channel Observable. */
  readonly channelEvents: ReplaySubject<'complete' | Error>;
  /** Opens another channel on the same connection. */
  openChannel(): Promise<{ channel: Channel; events: ReplaySubject<'complete' | Error>; close(): void }>;
  close(): void;
}

function track<T>(source: Observable<T>): {
  first: Promise<T>;
  events: ReplaySubject<'complete' | Error>;
  subscription: Subscription;
} {
  const values = new ReplaySubject<T>(1);
  const events = new ReplaySubject<'complete' | Error>();
  const subscription = source.subscribe({
    next: (v) => values.next(v),
    error: (e: Error) => {
      values.error(e);
      events.next(e);
    },
    complete: () => {
      values.complete();
      events.next('complete');
    },
  });
  return { first: firstValueFrom(values), events, subscription };
}

/** Connects (to AMQP_URL or the local broker) and opens a channel. */
export async function openSession(options: ConnectOptions = {}): Promise<Session> {
  const url = await brokerUrl();
  const conn = track(connect(url, options));
  const connection = await conn.first;
  const subscriptions: Subscription[] = [conn.subscription];
  const openChannel = async () => {
    const ch = track(connection.channel());
    subscriptions.push(ch.subscription);
    return { channel: await ch.first, events: ch.events, close: () => ch.subscription.unsubscribe() };
  };
  const first = await openChannel();
  return {
    connection,
    channel: first.channel,
    connectionEvents: conn.events,
    channelEvents: first.events,
    openChannel,
    close: () => {
      for (const s of subscriptions.reverse()) s.unsubscribe();
    },
  };
}

/** A name unique to this test run. */
export function uniqueName(prefix: string): string {
  return `rxamqp-test-${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
