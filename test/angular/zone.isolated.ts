/**
 * Zones, with zone.js loaded as in a zone-based application: the connection (the transport's
 * connector, the sockets' listeners, the heartbeat timers) is set up outside Angular's zone, so that
 * an idle connection never makes the zone unstable (no change detection); what the application
 * receives (deliveries, states, publish outcomes) comes back inside the zone. A control case shows
 * that the measure sees the difference: the same connection subscribed inside the zone does make it
 * unstable with every heartbeat.
 */
import 'zone.js';
import { NgZone } from '@angular/core';
import { lastValueFrom, take } from 'rxjs';
import { provideRxAmqp, RxAmqp } from '../../src/angular/index.js';
import { connect, type TransportConnector } from '../../src/index.js';
import { EmbeddedBroker } from '../../src/testing/index.js';
import { environment, until } from './support.js';

let broker: EmbeddedBroker;
let zone: NgZone;
/** Times the Angular zone went from stable to busy: each would be a change detection. */
let unstable = 0;

beforeEach(() => {
  broker = new EmbeddedBroker();
  zone = new NgZone({ enableLongStackTrace: false });
  unstable = 0;
  zone.onUnstable.subscribe(() => {
    unstable += 1;
  });
});

afterEach(() => {
  broker.close();
});

/** The broker's connector, recording whether each connection is opened inside the Angular zone. */
function recordingConnector(opened: boolean[]): TransportConnector {
  return (target, handler, signal) => {
    opened.push(NgZone.isInAngularZone());
    return broker.connector(target, handler, signal);
  };
}

/** An application bootstrapped inside the zone, as `bootstrapApplication` does. */
function bootstrap(opened: boolean[]) {
  return zone.run(() =>
    environment(
      [
        provideRxAmqp({
          url: 'amqp://guest:guest@embedded',
          transport: recordingConnector(opened),
          heartbeat: 1,
        }),
      ],
      [{ provide: NgZone, useValue: zone }],
    ),
  );
}

const idle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rxamqp/angular and NgZone', () => {
  it('opens the connection outside the zone and delivers inside it', async () => {
    const opened: boolean[] = [];
    const { injector } = bootstrap(opened);
    try {
      const amqp = injector.get(RxAmqp);
      await until(() => amqp.state().status === 'CONNECTED', 2000, 'CONNECTED');
      expect(opened).toEqual([false]);

      // A component subscribes, inside the zone; each delivery reaches it inside the zone.
      const inZone: boolean[] = [];
      zone.run(() =>
        amqp
          .consume({ name: 'zoned' }, { autoAck: true })
          .subscribe(() => inZone.push(NgZone.isInAngularZone())),
      );
      await until(() => broker.queue('zoned')?.consumerCount === 1, 2000, 'the consumer');
      broker.publish('', 'zoned', 'one');
      broker.publish('', 'zoned', 'two');
      await until(() => inZone.length === 2, 2000, 'two deliveries');
      expect(inZone).toEqual([true, true]);

      // States, publish outcomes and the connection itself too, wherever they are subscribed from.
      let stateInZone: boolean | undefined;
      amqp.state$.pipe(take(1)).subscribe(() => (stateInZone = NgZone.isInAngularZone()));
      expect(stateInZone).toBe(true);
      let outcomeInZone: boolean | undefined;
      const outcome = amqp.publish('', 'zoned', 'three');
      outcome.subscribe(() => (outcomeInZone = NgZone.isInAngularZone()));
      await lastValueFrom(outcome);
      expect(outcomeInZone).toBe(true);
      let connectionInZone: boolean | undefined;
      await new Promise<void>((resolve) =>
        amqp.connection$.pipe(take(1)).subscribe(() => {
          connectionInZone = NgZone.isInAngularZone();
          resolve();
        }),
      );
      expect(connectionInZone).toBe(true);
    } finally {
      injector.destroy();
    }
  });

  it('keeps an idle connection, heartbeats included, from making the zone unstable', async () => {
    const opened: boolean[] = [];
    const { injector } = bootstrap(opened);
    try {
      const amqp = injector.get(RxAmqp);
      // A component shows the state and a consumer's messages: subscribed inside the zone.
      zone.run(() => amqp.consume({ name: 'quiet' }, { autoAck: true }).subscribe());
      await until(() => broker.queue('quiet')?.consumerCount === 1, 2000, 'the consumer');
      await idle(100);
      const before = unstable;
      // Heartbeats every second both ways (heartbeat: 1): 2.5 s of them.
      await idle(2500);
      expect(broker.connections()[0]?.heartbeat).toBe(1);
      expect(unstable - before).toBe(0);
      // A delivery does reach the application: one turn of the zone for it.
      broker.publish('', 'quiet', 'ping');
      await idle(100);
      expect(unstable - before).toBeGreaterThanOrEqual(1);
    } finally {
      injector.destroy();
    }
  });

  it('(control) the same connection subscribed inside the zone makes it unstable with every heartbeat', async () => {
    const subscription = zone.run(() =>
      connect('amqp://guest:guest@embedded', { transport: broker.connector, heartbeat: 1 }).subscribe(),
    );
    try {
      await until(() => broker.connections().some((c) => c.state === 'open'), 2000, 'the connection');
      await idle(100);
      const before = unstable;
      await idle(2500);
      expect(unstable - before).toBeGreaterThanOrEqual(2);
    } finally {
      subscription.unsubscribe();
    }
  });
});
