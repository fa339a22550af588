/**
 * Conformance: queues. queue.declare-ok's name and counts, server-named `amq.gen-` queues, passive
 * declares, redeclares that do not match (durable, exclusive, auto-delete, arguments, queue type),
 * argument validation, reserved `amq.*` names, reply texts cut at 255 bytes, exclusive queues seen
 * from another connection, auto-delete, exclusive and `x-expires` lifetimes, bindings to missing
 * queues and exchanges, and the counts and preconditions of purge and delete.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { backends } from './backends.js';
import {
  channelError,
  collect,
  countsOf,
  errorOf,
  eventually,
  getOne,
  publish,
  publishAll,
  sleep,
  useBroker,
} from './support.js';

describe.each(backends)('queues [$name]', (backend) => {
  const broker = useBroker(backend);

  describe('declare', () => {
    it('reports the name and zero counts for a new queue, and the counts of an existing one', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('declare');
      expect(await lastValueFrom(ch.queueDeclare(q))).toEqual({
        queue: q,
        messageCount: 0,
        consumerCount: 0,
      });
      await publishAll(ch, q, ['a', 'b', 'c']);
      const consumer = collect((await broker.channel()).consume(q, { prefetch: 1 }));
      await consumer.take(1);
      // One message is out to the consumer (unacked): declare-ok counts only the ready ones.
      expect(await lastValueFrom(ch.queueDeclare(q))).toEqual({
        queue: q,
        messageCount: 2,
        consumerCount: 1,
      });
      expect(await lastValueFrom(ch.queueDeclare(q, { passive: true }))).toEqual({
        queue: q,
        messageCount: 2,
        consumerCount: 1,
      });
      consumer.stop();
    });

    it('names a queue declared with an empty name amq.gen-<22 characters>, different each time', async () => {
      const ch = await broker.channel();
      const a = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      const b = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      expect(a.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
      expect(b.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
      expect(a.queue).not.toBe(b.queue);
      expect(a).toEqual({ queue: a.queue, messageCount: 0, consumerCount: 0 });
      // A server-named queue is an ordinary queue by its name afterwards.
      expect(await countsOf(ch, a.queue)).toEqual({ messageCount: 0, consumerCount: 0 });
    });

    it('refuses a non-passive redeclare of a server-named queue with 403, even on its own connection', async () => {
      // The amq.* check comes before the lookup: only a passive declare reaches an amq.gen- queue.
      const ch = await broker.channel();
      const { queue: q } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      expect(await errorOf(ch.queueDeclare(q, { exclusive: true }))).toEqual(
        channelError(403, `ACCESS_REFUSED - queue name '${q}' contains reserved prefix 'amq.*'`, 50, 10),
      );
    });

    it('fails a passive declare of a missing queue with 404, closing the channel only', async () => {
      const conn = await broker.connection();
      const ch = await broker.channel(conn);
      const q = broker.name('missing');
      expect(await errorOf(ch.queueDeclare(q, { passive: true }))).toEqual(
        channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 50, 10),
      );
      expect(ch.isOpen).toBe(false);
      expect(conn.isOpen).toBe(true);
      const sibling = await broker.channel(conn);
      expect(await lastValueFrom(sibling.queueDeclare('', { exclusive: true }))).toMatchObject({
        messageCount: 0,
      });
    });

    it('refuses a name starting with amq. with 403, but allows a passive declare of such a name to say 404', async () => {
      const ch = await broker.channel();
      expect(await errorOf(ch.queueDeclare('amq.conformance'))).toEqual(
        channelError(
          403,
          `ACCESS_REFUSED - queue name 'amq.conformance' contains reserved prefix 'amq.*'`,
          50,
          10,
        ),
      );
      const ch2 = await broker.channel();
      expect(await errorOf(ch2.queueDeclare('amq.conformance', { passive: true }))).toEqual(
        channelError(404, `NOT_FOUND - no queue 'amq.conformance' in vhost '${broker.vhost}'`, 50, 10),
      );
    });

    it('cuts a reply text longer than 255 bytes to 252 and "..."', async () => {
      const ch = await broker.channel();
      const q = `conformance-${'x'.repeat(230)}-${Math.random().toString(36).slice(2, 8)}`;
      const full = `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`;
      expect(full.length).toBeGreaterThan(255);
      const error = await errorOf(ch.queueDeclare(q, { passive: true }));
      expect(error.replyText).toBe(`${full.slice(0, 252)}...`);
      expect(error.replyText).toHaveLength(255);
    });

    it('fails a redeclare with another durable flag with 406 naming the argument', async () => {
      const ch = await broker.channel();
      const q = broker.queue('durable');
      await lastValueFrom(ch.queueDeclare(q, { durable: false }));
      expect(await errorOf(ch.queueDeclare(q, { durable: true }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '${broker.vhost}': received 'true' but current is 'false'`,
          50,
          10,
        ),
      );
    });

    it('fails a redeclare with another auto-delete flag with 406', async () => {
      const ch = await broker.channel();
      const q = broker.queue('autodelete');
      await lastValueFrom(ch.queueDeclare(q, { autoDelete: true }));
      // The queue has never had a consumer: it stays.
      expect(await errorOf(ch.queueDeclare(q, { autoDelete: false }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '${q}' in vhost '${broker.vhost}': received 'false' but current is 'true'`,
          50,
          10,
        ),
      );
    });

    it('fails a redeclare with another argument value, or without the argument, with 406 naming its type', async () => {
      const q = broker.queue('args');
      const ch = await broker.channel();
      await lastValueFrom(ch.queueDeclare(q, { arguments: { 'x-message-ttl': 1000 } }));
      expect(await errorOf(ch.queueDeclare(q, { arguments: { 'x-message-ttl': 2000 } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '${broker.vhost}': received '2000' but current is '1000'`,
          50,
          10,
        ),
      );
      const ch2 = await broker.channel();
      expect(await errorOf(ch2.queueDeclare(q))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '${broker.vhost}': received none but current is the value '1000' of type 'signedint'`,
          50,
          10,
        ),
      );
      // The same arguments again are fine, and a passive declare ignores them.
      const ch3 = await broker.channel();
      await lastValueFrom(ch3.queueDeclare(q, { arguments: { 'x-message-ttl': 1000 } }));
      await lastValueFrom(
        ch3.queueDeclare(q, { passive: true, durable: true, arguments: { 'x-max-length': 1 } }),
      );
    });

    it('treats a missing x-queue-type as classic: explicit classic matches, quorum does not', async () => {
      // When only one side has the argument, the text names the value and its type ('longstr').
      const ch = await broker.channel();
      const q = broker.queue('queue-type');
      await lastValueFrom(ch.queueDeclare(q));
      await lastValueFrom(ch.queueDeclare(q, { arguments: { 'x-queue-type': 'classic' } }));
      expect(
        await errorOf(ch.queueDeclare(q, { durable: false, arguments: { 'x-queue-type': 'quorum' } })),
      ).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '${broker.vhost}': received the value 'quorum' of type 'longstr' but current is none`,
          50,
          10,
        ),
      );
    });

    it('refuses an unknown x-queue-type and an argument of the wrong type with 406', async () => {
      const ch = await broker.channel();
      const q = broker.queue('bogus-type');
      expect(await errorOf(ch.queueDeclare(q, { arguments: { 'x-queue-type': 'bogus' } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '${q}' in vhost '${broker.vhost}': "unsupported queue type 'bogus'"`,
          50,
          10,
        ),
      );
      const ch2 = await broker.channel();
      const q2 = broker.queue('string-ttl');
      expect(await errorOf(ch2.queueDeclare(q2, { arguments: { 'x-message-ttl': 'soon' } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue '${q2}' in vhost '${broker.vhost}': "expected integer, got longstr"`,
          50,
          10,
        ),
      );
    });

    it('accepts unknown arguments, but refuses x-dead-letter-routing-key without an exchange and x-delivery-limit on a classic queue', async () => {
      const ch = await broker.channel();
      const q = broker.queue('unknown-args');
      await lastValueFrom(ch.queueDeclare(q, { arguments: { 'x-unknown': 1, plain: 'value' } }));
      const q2 = broker.queue('dlrk');
      expect(await errorOf(ch.queueDeclare(q2, { arguments: { 'x-dead-letter-routing-key': 'k' } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue '${q2}' in vhost '${broker.vhost}': routing_key_but_no_dlx_defined`,
          50,
          10,
        ),
      );
      const ch2 = await broker.channel();
      const q3 = broker.queue('classic-limit');
      // Note the text: no colon before "of queue type".
      expect(await errorOf(ch2.queueDeclare(q3, { arguments: { 'x-delivery-limit': 1 } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue '${q3}' in vhost '${broker.vhost}' of queue type rabbit_classic_queue`,
          50,
          10,
        ),
      );
    });

    it('fails an invalid argument value with 406 PRECONDITION_FAILED', async () => {
      const ch = await broker.channel();
      const q = broker.queue('badarg');
      expect(await errorOf(ch.queueDeclare(q, { arguments: { 'x-max-length': -1 } }))).toEqual(
        channelError(
          406,
          `PRECONDITION_FAILED - invalid arg 'x-max-length' for queue '${q}' in vhost '${broker.vhost}': {value_negative,-1}`,
          50,
          10,
        ),
      );
    });
  });

  describe('exclusive queues', () => {
    it("refuses another connection's exclusive queue with 405 RESOURCE_LOCKED, for declare, passive declare, consume, get, purge and delete", async () => {
      const owner = await broker.connect();
      const ch = await broker.channel(owner);
      const q = broker.queue('exclusive');
      await lastValueFrom(ch.queueDeclare(q, { exclusive: true }));
      const other = await broker.connect();
      const locked = `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '${broker.vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`;
      const attempts: [
        string,
        (c: Awaited<ReturnType<typeof broker.channel>>) => Promise<unknown>,
        number,
        number,
      ][] = [
        ['declare', (c) => lastValueFrom(c.queueDeclare(q, { exclusive: true })), 50, 10],
        ['passive declare', (c) => lastValueFrom(c.queueDeclare(q, { passive: true })), 50, 10],
        ['consume', (c) => collect(c.consume(q)).error(), 60, 20],
        ['get', (c) => lastValueFrom(c.get(q), { defaultValue: undefined }), 60, 70],
        ['purge', (c) => lastValueFrom(c.queuePurge(q)), 50, 30],
        ['delete', (c) => lastValueFrom(c.queueDelete(q)), 50, 40],
      ];
      for (const [what, attempt, classId, methodId] of attempts) {
        const c = await broker.channel(other);
        const failure = what === 'consume' ? attempt(c).then((e) => Promise.reject(e)) : attempt(c);
        expect([what, await errorOf(failure)]).toEqual([what, channelError(405, locked, classId, methodId)]);
      }
      expect(other.isOpen).toBe(true);
      // The owner still has it.
      expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 0 });
    });

    it('fails a non-exclusive redeclare of an exclusive queue on the same connection with 405', async () => {
      const ch = await broker.channel();
      const q = broker.queue('excl-redeclare');
      await lastValueFrom(ch.queueDeclare(q, { exclusive: true }));
      expect(await errorOf(ch.queueDeclare(q))).toEqual(
        channelError(
          405,
          `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '${broker.vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
          50,
          10,
        ),
      );
    });

    it('fails an exclusive redeclare of a non-exclusive queue with 405, even on the same connection', async () => {
      const ch = await broker.channel();
      const q = broker.queue('plain-then-exclusive');
      await lastValueFrom(ch.queueDeclare(q));
      expect(await errorOf(ch.queueDeclare(q, { exclusive: true }))).toEqual(
        channelError(
          405,
          `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '${broker.vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
          50,
          10,
        ),
      );
    });

    it('lets another connection publish to an exclusive queue: exclusivity guards use, not routing', async () => {
      const owner = await broker.connect();
      const ch = await broker.channel(owner);
      const q = broker.queue('exclusive-publish');
      await lastValueFrom(ch.queueDeclare(q, { exclusive: true }));
      const other = await broker.confirmChannel();
      expect(await publish(other, '', q, 'in')).toEqual({ status: 'acked', seq: 1 });
      expect(await countsOf(ch, q)).toEqual({ messageCount: 1, consumerCount: 0 });
    });

    it('keeps an exclusive queue when the channel that declared it closes', async () => {
      const conn = await broker.connection();
      const declaring = await broker.channel(conn);
      const q = broker.queue('exclusive-channel');
      await lastValueFrom(declaring.queueDeclare(q, { exclusive: true }));
      await lastValueFrom(declaring.close());
      const ch = await broker.channel(conn);
      expect(await lastValueFrom(ch.queueDeclare(q, { exclusive: true }))).toEqual({
        queue: q,
        messageCount: 0,
        consumerCount: 0,
      });
    });

    it('deletes an exclusive queue when its connection closes', async () => {
      const owner = await broker.connect();
      const ch = await broker.channel(owner);
      const { queue: q } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      await lastValueFrom(owner.close());
      const observer = await broker.channel();
      expect(await errorOf(observer.queueDeclare(q, { passive: true }))).toEqual(
        channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 50, 10),
      );
    });
  });

  describe('auto-delete', () => {
    it('keeps an auto-delete queue until it has had a consumer, then deletes it when the last consumer goes', async () => {
      const ch = await broker.channel();
      const q = broker.queue('autodelete');
      await lastValueFrom(ch.queueDeclare(q, { autoDelete: true }));
      expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 0 });
      const first = collect(ch.consume(q));
      const second = collect(ch.consume(q));
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 2,
        'two consumers',
      );
      first.stop();
      await eventually(
        () => countsOf(ch, q),
        (c) => c.consumerCount === 1,
        'one consumer',
      );
      second.stop();
      const observer = await broker.channel();
      await eventually(
        () => errorOf(observer.queueDeclare(q, { passive: true })).catch(() => undefined),
        (e) => e?.replyCode === 404,
        'the queue to go',
      );
    });
  });

  describe('queue expiry', () => {
    it('deletes a queue unused for x-expires; a passive declare counts as use', async () => {
      const ch = await broker.channel();
      const q = broker.queue('expires');
      // 400 ms, declared every 40 ms: a busy machine (2 cores, parallel suites) may stall a few
      // hundred ms without the queue going unused for that long.
      await lastValueFrom(ch.queueDeclare(q, { arguments: { 'x-expires': 400 } }));
      // Declared (passively) every 40 ms for 400 ms: never unused for 400 ms, so it stays.
      for (let i = 0; i < 10; i++) {
        expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 0 });
        await sleep(40);
      }
      await sleep(700);
      expect(await errorOf(ch.queueDeclare(q, { passive: true }))).toEqual(
        channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 50, 10),
      );
    });
  });

  describe('bind and unbind', () => {
    it('fails a bind to a missing queue or a missing exchange with 404', async () => {
      const q = broker.queue('bind');
      const x = broker.name('no-exchange');
      const missingQ = broker.name('no-queue');
      const ch = await broker.channel();
      await lastValueFrom(ch.queueDeclare(q));
      expect(await errorOf(ch.queueBind(q, x, 'k'))).toEqual(
        channelError(404, `NOT_FOUND - no exchange '${x}' in vhost '${broker.vhost}'`, 50, 20),
      );
      const ch2 = await broker.channel();
      expect(await errorOf(ch2.queueBind(missingQ, 'amq.direct', 'k'))).toEqual(
        channelError(404, `NOT_FOUND - no queue '${missingQ}' in vhost '${broker.vhost}'`, 50, 20),
      );
    });

    it('refuses a binding to the default exchange with 403', async () => {
      const q = broker.queue('bind-default');
      const ch = await broker.channel();
      await lastValueFrom(ch.queueDeclare(q));
      expect(await errorOf(ch.queueBind(q, '', 'k'))).toEqual(
        channelError(403, `ACCESS_REFUSED - operation not permitted on the default exchange`, 50, 20),
      );
    });

    it('accepts a repeated bind and the unbind of a binding that does not exist', async () => {
      const q = broker.queue('rebind');
      const ch = await broker.channel();
      await lastValueFrom(ch.queueDeclare(q));
      await lastValueFrom(ch.queueBind(q, 'amq.direct', q));
      await lastValueFrom(ch.queueBind(q, 'amq.direct', q));
      await lastValueFrom(ch.queueUnbind(q, 'amq.direct', 'never-bound'));
      await lastValueFrom(ch.queueUnbind(q, 'amq.direct', q));
      await lastValueFrom(ch.queueUnbind(q, 'amq.direct', q));
      expect(ch.isOpen).toBe(true);
    });
  });

  describe('purge and delete', () => {
    it('purges the ready messages and reports how many, leaving unacked ones to come back', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('purge');
      await lastValueFrom(ch.queueDeclare(q));
      await publishAll(ch, q, ['1', '2', '3', '4']);
      const getter = await broker.channel();
      const held = await getOne(getter, q);
      expect(held?.text()).toBe('1');
      expect(await lastValueFrom(ch.queuePurge(q))).toEqual({ messageCount: 3 });
      expect(await lastValueFrom(ch.queuePurge(q))).toEqual({ messageCount: 0 });
      // The unacked message was not purged: closing its channel requeues it.
      await lastValueFrom(getter.close());
      const back = await getOne(ch, q, { noAck: true });
      expect([back?.text(), back?.fields.redelivered, back?.fields.messageCount]).toEqual(['1', true, 0]);
    });

    it('fails a purge of a missing queue with 404', async () => {
      const ch = await broker.channel();
      const q = broker.name('no-queue');
      expect(await errorOf(ch.queuePurge(q))).toEqual(
        channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 50, 30),
      );
    });

    it('deletes a queue reporting its ready message count; deleting a missing queue succeeds with 0', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('delete');
      await lastValueFrom(ch.queueDeclare(q));
      await publishAll(ch, q, ['1', '2']);
      expect(await lastValueFrom(ch.queueDelete(q))).toEqual({ messageCount: 2 });
      expect(await lastValueFrom(ch.queueDelete(q))).toEqual({ messageCount: 0 });
      expect(ch.isOpen).toBe(true);
    });

    it('refuses if-empty on a queue with messages and if-unused on a queue with consumers, with 406', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('delete-if');
      await lastValueFrom(ch.queueDeclare(q));
      await publishAll(ch, q, ['1']);
      expect(await errorOf(ch.queueDelete(q, { ifEmpty: true }))).toEqual(
        channelError(406, `PRECONDITION_FAILED - queue '${q}' in vhost '${broker.vhost}' not empty`, 50, 40),
      );
      const ch2 = await broker.channel();
      const consumer = collect(ch2.consume(q, { noAck: true }));
      await consumer.take(1);
      const ch3 = await broker.channel();
      expect(await errorOf(ch3.queueDelete(q, { ifUnused: true }))).toEqual(
        channelError(406, `PRECONDITION_FAILED - queue '${q}' in vhost '${broker.vhost}' in use`, 50, 40),
      );
      // Now empty: if-empty passes while it still has its consumer.
      const ch4 = await broker.channel();
      expect(await lastValueFrom(ch4.queueDelete(q, { ifEmpty: true }))).toEqual({ messageCount: 0 });
      consumer.stop();
    });

    it('counts only ready messages when deleting; an unacked message of the deleted queue can still be acked', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('delete-unacked');
      await lastValueFrom(ch.queueDeclare(q));
      await publishAll(ch, q, ['1', '2', '3']);
      const holder = await broker.channel();
      const held = await getOne(holder, q);
      expect(await lastValueFrom(ch.queueDelete(q))).toEqual({ messageCount: 2 });
      expect(held?.ack()).toBe(true);
      // The ack of a message whose queue is gone is not an error.
      await lastValueFrom(holder.queueDeclare('', { exclusive: true }));
      expect(holder.isOpen).toBe(true);
    });

    it('deletes an unused, empty queue with both conditions', async () => {
      const ch = await broker.channel();
      const q = broker.queue('delete-both');
      await lastValueFrom(ch.queueDeclare(q));
      expect(await lastValueFrom(ch.queueDelete(q, { ifEmpty: true, ifUnused: true }))).toEqual({
        messageCount: 0,
      });
      expect(await errorOf(ch.queueDeclare(q, { passive: true }))).toEqual(
        channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 50, 10),
      );
    });
  });
});
