import { lastValueFrom } from 'rxjs';
import { connectTo, EmbeddedBroker, first, text } from './helpers.js';

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
