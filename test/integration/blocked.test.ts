/**
 * connection.blocked / unblocked against the real broker: a memory watermark set near zero raises the
 * memory alarm (`rabbitmqctl set_vm_memory_high_watermark 0.0000001`), so the broker blocks publishing
 * connections. `blocked$` reports it, publishes wait (or fail fast, or time out), `close()` does not
 * hang, and once the watermark is restored `unblocked` arrives and the waiting publishes go through.
 * The watermark is always restored, even when a test fails.
 */
import { randomUUID } from 'node:crypto';
import { lastValueFrom } from 'rxjs';
import {
  type BlockedEvent,
  type Connection,
  openConnection,
  PublishBlockedError,
  type PublishOutcome,
} from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import {
  currentWatermark,
  eventually,
  restoreWatermark,
  setMemoryWatermark,
} from '../support/rabbitmqctl.js';

describe('blocked connections (real broker, memory alarm)', () => {
  let saved: string | undefined;
  const opened: Connection[] = [];
  afterAll(async () => {
    if (saved !== undefined) await restoreWatermark(saved);
    for (const c of opened) if (c.isOpen) await lastValueFrom(c.close()).catch(() => undefined);
  });

  it('reports blocked and unblocked, holds publishes while blocked, and fails fast or times out by option', async () => {
    const url = await brokerUrl();
    const queue = `rxamqp-test-blocked-${randomUUID().slice(0, 8)}`;
    const waiting = await openConnection(url);
    const failing = await openConnection(url, { whenBlocked: 'fail' });
    const timing = await openConnection(url, { blockedTimeout: 300 });
    const closing = await openConnection(url, { closeTimeout: 2000 });
    opened.push(waiting, failing, timing, closing);
    const ch = await waiting.openChannel();
    await lastValueFrom(ch.queueDeclare(queue, { autoDelete: false }));
    const failCh = await failing.openChannel();
    const timeCh = await timing.openChannel();
    const closeCh = await closing.openChannel();
    const probeQueue = `${queue}-probe`;
    await lastValueFrom(ch.queueDeclare(probeQueue, { autoDelete: false }));
    const events: BlockedEvent[] = [];
    waiting.blocked$.subscribe((e) => events.push(e));

    const outcomes: PublishOutcome[] = [];
    saved = await currentWatermark();
    try {
      await setMemoryWatermark(0.0000001);
      // RabbitMQ blocks a connection (and says so) when it publishes during the alarm: each connection
      // publishes one probe, which the broker holds until the alarm clears.
      for (const c of [ch, failCh, timeCh, closeCh])
        c.publish('', probeQueue, 'probe').subscribe({ error: () => {} });
      expect(await eventually(() => events.length === 1, 20_000)).toBe(true);
      expect(await eventually(() => failing.isBlocked && timing.isBlocked && closing.isBlocked, 20_000)).toBe(
        true,
      );
      expect(events[0]).toEqual({ blocked: true, reason: expect.stringContaining('memory') });
      expect(waiting.isBlocked).toBe(true);
      // A late subscriber hears the current state at once.
      const late: BlockedEvent[] = [];
      waiting.blocked$.subscribe((e) => late.push(e)).unsubscribe();
      expect(late).toEqual([events[0]]);

      // Waits: not written while blocked.
      ch.publish('', queue, 'held').subscribe((o) => outcomes.push(o));
      const outcomesWhileBlocked = outcomes.length;
      // Fails fast.
      await expect(lastValueFrom(failCh.publish('', queue, 'refused'))).rejects.toMatchObject({
        code: 'CONNECTION_BLOCKED',
        reason: expect.stringContaining('memory'),
      });
      // Times out.
      const timedOut = lastValueFrom(timeCh.publish('', queue, 'late'));
      await expect(timedOut).rejects.toBeInstanceOf(PublishBlockedError);
      await expect(timedOut).rejects.toMatchObject({ code: 'BLOCKED_TIMEOUT' });
      expect(outcomesWhileBlocked).toBe(0);
      expect(outcomes).toEqual([]);
      // Closing a blocked connection does not hang: the broker does not read it, so the close is
      // bounded by closeTimeout.
      const started = Date.now();
      await lastValueFrom(closing.close());
      expect(Date.now() - started).toBeLessThan(2500);
      expect(closing.isOpen).toBe(false);
    } finally {
      await restoreWatermark(saved);
    }
    expect(await eventually(() => events.length === 2, 20_000)).toBe(true);
    expect(events[1]).toEqual({ blocked: false });
    expect(waiting.isBlocked).toBe(false);
    // The held publish went through once unblocked.
    expect(await eventually(() => outcomes.length === 1)).toBe(true);
    expect(outcomes[0]).toEqual({ status: 'sent' });
    const got = await lastValueFrom(ch.get(queue, { noAck: true }));
    expect(got?.body.toString()).toBe('held');
    const rest = await lastValueFrom(ch.queueDelete(queue));
    expect(rest.messageCount).toBe(0); // neither the refused nor the timed-out message was sent
    await lastValueFrom(ch.queueDelete(probeQueue));
  }, 90_000);
});
