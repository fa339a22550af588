import { lastValueFrom } from 'rxjs';
import { connectTo, EmbeddedBroker, first, text } from './helpers.js';
import { RawClient } from './raw-client.js';

describe('embedded broker under jest.useFakeTimers()', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs a real client flow without advancing the fake clock', async () => {
    const broker = new EmbeddedBroker();
    const conn = await connectTo(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('jobs'));
    await lastValueFrom(ch.confirmSelect());
    const outcomes = await Promise.all([
      lastValueFrom(ch.publish('', 'jobs', 'one')),
      lastValueFrom(ch.publish('', 'jobs', 'two')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['acked', 'acked']);
    const deliveries = await first(ch.consume('jobs', { prefetch: 10 }), 2);
    expect(deliveries.map((d) => text(d.body))).toEqual(['one', 'two']);
    for (const d of deliveries) d.ack();
    await lastValueFrom(ch.queueDeclare('jobs', { passive: true }));
    expect(broker.queue('jobs')).toMatchObject({ messageCount: 0, unackedCount: 0 });
    await lastValueFrom(conn.close());
  });
});

describe('heartbeats', () => {
  afterEach(() => jest.useRealTimers());

  it('sends heartbeats on its own timer with timers: true, so an idle connection stays up', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ timers: true, heartbeat: 1 });
    const conn = await connectTo(broker, 'amqp://guest:guest@embedded?heartbeat=1');
    expect(conn.tune.heartbeat).toBe(1);
    for (let i = 0; i < 20; i++) await jest.advanceTimersByTimeAsync(500);
    expect(conn.isOpen).toBe(true);
    expect(conn.counters.heartbeatsReceived).toBeGreaterThan(5);
    await lastValueFrom(conn.close());
    broker.close();
  });

  it('answers the client’s heartbeats without timers', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ heartbeat: 1 });
    const conn = await connectTo(broker, 'amqp://guest:guest@embedded?heartbeat=1');
    for (let i = 0; i < 20; i++) await jest.advanceTimersByTimeAsync(500);
    expect(conn.isOpen).toBe(true);
    expect(conn.counters.heartbeatsReceived).toBeGreaterThan(0);
    await lastValueFrom(conn.close());
  });

  it('drops a connection whose client went silent for two heartbeat intervals, with timers: true', async () => {
    jest.useFakeTimers();
    const broker = new EmbeddedBroker({ timers: true, heartbeat: 1 });
    const raw = await RawClient.connect(broker, { heartbeat: 1 });
    expect(broker.connections()).toHaveLength(1);
    for (let i = 0; i < 6; i++) await jest.advanceTimersByTimeAsync(500);
    expect(broker.connections()).toEqual([]);
    expect(raw.events.some((e) => e.kind === 'closed')).toBe(true);
  });
});
