/**
 * Conformance: publishing. Publisher confirms (sequence numbers, acks), mandatory messages that no
 * queue takes (basic.return with 312 NO_ROUTE, then the ack), message properties and bodies (empty,
 * several frames) as delivered, the `userId` check, and transactions: commit publishes, rollback
 * discards, acks inside a transaction, returns at the commit, and the 406s for mixing modes or
 * committing outside a transaction.
 *
 * @module
 */
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { backends } from './backends.js';
import {
  channelError,
  countsOf,
  drain,
  errorOf,
  eventually,
  getOne,
  publish,
  publishAll,
  shapeOf,
  useBroker,
  withTimeout,
} from './support.js';

describe.each(backends)('publish [$name]', (backend) => {
  const broker = useBroker(backend);

  describe('confirms', () => {
    it('acks every publish with consecutive sequence numbers from 1, routed or not', async () => {
      const ch = await broker.confirmChannel();
      const q = broker.queue('confirms');
      await lastValueFrom(ch.queueDeclare(q));
      const outcomes = await Promise.all([
        publish(ch, '', q, '1'),
        publish(ch, '', broker.name('nowhere'), '2'),
        publish(ch, 'amq.fanout', 'x', '3'),
        publish(ch, '', q, '4'),
      ]);
      expect(outcomes).toEqual([1, 2, 3, 4].map((seq) => ({ status: 'acked', seq })));
      expect(await drain(ch, q)).toEqual(['1', '4']);
      // confirm.select again is accepted and changes nothing.
      await lastValueFrom(ch.confirmSelect());
      expect(await publish(ch, '', q, '5')).toEqual({ status: 'acked', seq: 5 });
    });

    it('returns an unroutable mandatory message with 312 NO_ROUTE, then acks it', async () => {
      const ch = await broker.confirmChannel();
      const x = broker.exchange('mandatory');
      await lastValueFrom(ch.exchangeDeclare(x, 'direct'));
      const returns = firstValueFrom(ch.returns$);
      const properties = { contentType: 'text/plain', headers: { n: 1 }, messageId: 'm-1' };
      const outcome = await publish(ch, x, 'no.binding', 'bounced', properties, { mandatory: true });
      expect(outcome.status).toBe('returned');
      if (outcome.status !== 'returned') return;
      expect(outcome.seq).toBe(1);
      const { body, ...returned } = outcome.returned;
      expect(returned).toEqual({
        replyCode: 312,
        replyText: 'NO_ROUTE',
        exchange: x,
        routingKey: 'no.binding',
        properties,
      });
      expect(Buffer.from(body).toString()).toBe('bounced');
      expect((await withTimeout(returns, 'returns$')).replyText).toBe('NO_ROUTE');
      // Through the default exchange to a queue that does not exist: returned the same way.
      const missing = broker.name('no-queue');
      const viaDefault = await publish(ch, '', missing, 'bounced too', {}, { mandatory: true });
      expect(
        viaDefault.status === 'returned' && [
          viaDefault.seq,
          viaDefault.returned.replyCode,
          viaDefault.returned.replyText,
          viaDefault.returned.exchange,
          viaDefault.returned.routingKey,
        ],
      ).toEqual([2, 312, 'NO_ROUTE', '', missing]);
      // A mandatory message some queue takes is only acked; an unroutable one without mandatory too.
      const q = broker.queue('mandatory-routed');
      await lastValueFrom(ch.queueDeclare(q));
      expect(await publish(ch, '', q, 'taken', {}, { mandatory: true })).toEqual({ status: 'acked', seq: 3 });
      expect(await publish(ch, x, 'no.binding', 'dropped')).toEqual({ status: 'acked', seq: 4 });
    });

    it('returns an unroutable mandatory message on a channel without confirms', async () => {
      const ch = await broker.channel();
      const returns = firstValueFrom(ch.returns$);
      const missing = broker.name('no-queue');
      expect(await publish(ch, '', missing, 'bounced', {}, { mandatory: true })).toEqual({ status: 'sent' });
      const r = await withTimeout(returns, 'the return');
      expect([r.replyCode, r.replyText, r.exchange, r.routingKey, Buffer.from(r.body).toString()]).toEqual([
        312,
        'NO_ROUTE',
        '',
        missing,
        'bounced',
      ]);
    });
  });

  it('delivers every property as published', async () => {
    const ch = await broker.confirmChannel();
    const q = broker.queue('properties');
    await lastValueFrom(ch.queueDeclare(q));
    const properties = {
      contentType: 'application/json',
      contentEncoding: 'identity',
      headers: { s: 'text', n: 42, f: 1.5, b: true, nested: { k: 'v' }, list: [1, 'two'] },
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr',
      replyTo: 'reply',
      expiration: '60000',
      messageId: 'id-1',
      timestamp: new Date(1_700_000_000_000),
      type: 'kind',
      userId: broker.username,
      appId: 'conformance',
    };
    await publishAll(ch, q, ['{}'], properties);
    const d = await getOne(ch, q, { noAck: true });
    expect(d?.properties).toEqual(properties);
  });

  it('delivers an empty body and a body of several frames unchanged', async () => {
    const ch = await broker.confirmChannel();
    const q = broker.queue('bodies');
    await lastValueFrom(ch.queueDeclare(q));
    const large = 'abcdefghij'.repeat(40_000); // 400 kB: several 128 kB frames
    await publishAll(ch, q, ['', large]);
    const empty = await getOne(ch, q, { noAck: true });
    expect([empty?.body.length, empty?.properties]).toEqual([0, {}]);
    expect((await getOne(ch, q, { noAck: true }))?.text()).toBe(large);
  });

  it('refuses a userId other than the authenticated user with 406', async () => {
    const ch = await broker.channel();
    const q = broker.queue('user-id');
    await lastValueFrom(ch.queueDeclare(q));
    expect(await publish(ch, '', q, 'x', { userId: 'somebody-else' })).toEqual({ status: 'sent' });
    await eventually(
      async () => ch.isOpen,
      (open) => !open,
      'the channel to close',
    );
    expect(shapeOf(ch.error)).toEqual(
      channelError(
        406,
        `PRECONDITION_FAILED - user_id property set to 'somebody-else' but authenticated user was '${broker.username}'`,
        60,
        40,
      ),
    );
  });

  describe('transactions', () => {
    it('publishes on commit and discards on rollback', async () => {
      const ch = await broker.channel();
      const observer = await broker.channel();
      const q = broker.queue('tx');
      await lastValueFrom(ch.queueDeclare(q));
      await lastValueFrom(ch.txSelect());
      await publish(ch, '', q, '1');
      await publish(ch, '', q, '2');
      // Not routed before the commit.
      expect(await countsOf(observer, q)).toEqual({ messageCount: 0, consumerCount: 0 });
      await lastValueFrom(ch.txCommit());
      expect(await countsOf(observer, q)).toEqual({ messageCount: 2, consumerCount: 0 });
      await publish(ch, '', q, '3');
      await lastValueFrom(ch.txRollback());
      await lastValueFrom(ch.txCommit());
      // The channel stays transactional: a commit with nothing in it is fine, and so is the next one.
      await publish(ch, '', q, '4');
      await lastValueFrom(ch.txCommit());
      expect(await drain(observer, q)).toEqual(['1', '2', '4']);
    });

    it('settles on commit; a rolled-back ack leaves the message unacked, not requeued', async () => {
      const pub = await broker.confirmChannel();
      const q = broker.queue('tx-ack');
      await lastValueFrom(pub.queueDeclare(q));
      await publishAll(pub, q, ['1', '2']);
      const ch = await broker.channel();
      await lastValueFrom(ch.txSelect());
      const [d1, d2] = [await getOne(ch, q), await getOne(ch, q)];
      d1?.ack();
      d2?.reject({ requeue: true });
      await lastValueFrom(ch.txRollback());
      // Neither settlement happened: both still unacked on this channel, nothing ready.
      expect(await countsOf(pub, q)).toEqual({ messageCount: 0, consumerCount: 0 });
      ch.ack(d1!.fields.deliveryTag);
      await lastValueFrom(ch.txCommit());
      await lastValueFrom(ch.close());
      // Closing the channel requeued the one never settled in a committed transaction.
      const back = await getOne(pub, q, { noAck: true });
      expect([back?.text(), back?.fields.redelivered, back?.fields.messageCount]).toEqual(['2', true, 0]);
    });

    it('returns an unroutable mandatory message of a transaction at the commit, before commit-ok', async () => {
      const ch = await broker.channel();
      const events: string[] = [];
      ch.returns$.subscribe((r) => events.push(`return ${r.replyCode} ${r.replyText}`));
      await lastValueFrom(ch.txSelect());
      await publish(ch, '', broker.name('nowhere'), 'x', {}, { mandatory: true });
      // Nothing is routed, so nothing is returned, before the commit.
      await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      events.push('commit');
      await lastValueFrom(ch.txCommit());
      events.push('commit-ok');
      expect(events).toEqual(['commit', 'return 312 NO_ROUTE', 'commit-ok']);
    });

    it('refuses commit and rollback outside a transaction, and mixing tx with confirms, with 406', async () => {
      const cases: [
        string,
        (ch: Awaited<ReturnType<typeof broker.channel>>) => Promise<unknown>,
        string,
        number,
        number,
      ][] = [
        [
          'commit',
          (ch) => lastValueFrom(ch.txCommit()),
          'PRECONDITION_FAILED - channel is not transactional',
          90,
          20,
        ],
        [
          'rollback',
          (ch) => lastValueFrom(ch.txRollback()),
          'PRECONDITION_FAILED - channel is not transactional',
          90,
          30,
        ],
        [
          'confirm after tx',
          async (ch) => {
            await lastValueFrom(ch.txSelect());
            return lastValueFrom(ch.confirmSelect());
          },
          'PRECONDITION_FAILED - cannot switch from tx to confirm mode',
          85,
          10,
        ],
        [
          'tx after confirm',
          async (ch) => {
            await lastValueFrom(ch.confirmSelect());
            return lastValueFrom(ch.txSelect());
          },
          'PRECONDITION_FAILED - cannot switch from confirm to tx mode',
          90,
          10,
        ],
      ];
      for (const [what, attempt, text, classId, methodId] of cases) {
        const ch = await broker.channel();
        expect([what, await errorOf(attempt(ch))]).toEqual([
          what,
          channelError(406, text, classId, methodId),
        ]);
      }
    });
  });
});
