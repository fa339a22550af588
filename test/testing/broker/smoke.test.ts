import { lastValueFrom } from 'rxjs';
import { first, setup, text } from './helpers.js';

describe('embedded broker: a real client flow', () => {
  it('connects, declares, publishes with confirms, consumes and acks', async () => {
    const { broker, conn, ch } = await setup();
    const ok = await lastValueFrom(ch.queueDeclare('jobs'));
    expect(ok).toEqual({ queue: 'jobs', messageCount: 0, consumerCount: 0 });
    await lastValueFrom(ch.confirmSelect());
    const outcome = await lastValueFrom(ch.publish('', 'jobs', 'hello', { messageId: 'm1' }));
    expect(outcome).toEqual({ status: 'acked', seq: 1 });
    expect(broker.queue('jobs')?.messageCount).toBe(1);
    const [d] = await first(ch.consume('jobs'), 1);
    expect(text(d!.body)).toBe('hello');
    expect(d!.properties.messageId).toBe('m1');
    expect(d!.fields.redelivered).toBe(false);
    expect(broker.queue('jobs')).toMatchObject({ messageCount: 0, unackedCount: 1 });
    d!.ack();
    await lastValueFrom(ch.queueDeclare('jobs', { passive: true }));
    expect(broker.queue('jobs')).toMatchObject({ messageCount: 0, unackedCount: 0 });
    await lastValueFrom(conn.close());
    expect(broker.connections()).toEqual([]);
  });
});
