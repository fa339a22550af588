/**
 * Conformance: basic.get and settling. get-ok's fields and remaining count, get-empty, ack, nack and
 * reject with and without `multiple` (tag 0 included), requeueing to the original position with the
 * redelivered flag, dropping without requeue, and the 406 `unknown delivery tag` channel error for
 * a tag that is unknown, already settled, was delivered without acks or belongs to another channel.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import type { Channel } from '../../src/node.js';
import { backends } from './backends.js';
import {
  channelError,
  countsOf,
  drain,
  errorOf,
  eventually,
  getOne,
  publishAll,
  shapeOf,
  useBroker,
} from './support.js';

describe.each(backends)('get and settle [$name]', (backend) => {
  const broker = useBroker(backend);

  async function queueWith(prefix: string, bodies: readonly string[]): Promise<string> {
    const ch = await broker.confirmChannel();
    const q = broker.queue(prefix);
    await lastValueFrom(ch.queueDeclare(q));
    await publishAll(ch, q, bodies);
    return q;
  }

  /** Gets `n` messages with acks required; fails when the queue runs out. */
  async function getMany(ch: Channel, q: string, n: number) {
    const out = [];
    for (let i = 0; i < n; i++) {
      const d = await getOne(ch, q);
      if (d === undefined) throw new Error(`queue ${q} ran out after ${i}`);
      out.push(d);
    }
    return out;
  }

  /** Waits for the broker to close `ch` and returns the shape of its error. */
  async function closedWith(ch: Channel) {
    await eventually(
      async () => ch.isOpen,
      (open) => !open,
      'the channel to close',
    );
    return shapeOf(ch.error);
  }

  it('gets messages with the count left behind each, then get-empty', async () => {
    const q = await queueWith('get', ['a', 'b']);
    const ch = await broker.channel();
    const first = await getOne(ch, q);
    expect(first?.fields).toEqual({
      deliveryTag: 1,
      redelivered: false,
      exchange: '',
      routingKey: q,
      messageCount: 1,
    });
    const second = await getOne(ch, q, { noAck: true });
    expect(second?.fields).toEqual({
      deliveryTag: 2,
      redelivered: false,
      exchange: '',
      routingKey: q,
      messageCount: 0,
    });
    expect(await getOne(ch, q)).toBeUndefined();
    // An unacked message is not ready: the queue counts none.
    expect(await countsOf(ch, q)).toEqual({ messageCount: 0, consumerCount: 0 });
    expect(first?.ack()).toBe(true);
    expect(second?.ack()).toBe(false);
  });

  it('fails a get from a missing queue with 404', async () => {
    const ch = await broker.channel();
    const q = broker.name('missing');
    expect(await errorOf(ch.get(q))).toEqual(
      channelError(404, `NOT_FOUND - no queue '${q}' in vhost '${broker.vhost}'`, 60, 70),
    );
  });

  it('acks every message up to a tag with multiple, leaving later ones unacked', async () => {
    const q = await queueWith('ack-multiple', ['1', '2', '3', '4']);
    const ch = await broker.channel();
    const ds = await getMany(ch, q, 4);
    ch.ack(ds[2]!.fields.deliveryTag, { multiple: true });
    await lastValueFrom(ch.close());
    const reader = await broker.channel();
    const back = await getOne(reader, q, { noAck: true });
    expect([back?.text(), back?.fields.redelivered, back?.fields.messageCount]).toEqual(['4', true, 0]);
  });

  it('acks every outstanding message with tag 0 and multiple', async () => {
    const q = await queueWith('ack-zero', ['1', '2', '3']);
    const ch = await broker.channel();
    await getMany(ch, q, 3);
    ch.ack(0, { multiple: true });
    await lastValueFrom(ch.close());
    const reader = await broker.channel();
    expect(await drain(reader, q)).toEqual([]);
  });

  it('requeues with nack multiple in the original order, redelivered, ahead of the rest', async () => {
    const q = await queueWith('nack-multiple', ['1', '2', '3', '4', '5']);
    const ch = await broker.channel();
    const ds = await getMany(ch, q, 4);
    ch.nack(ds[2]!.fields.deliveryTag, { multiple: true, requeue: true });
    const again = await getMany(ch, q, 4);
    expect(again.map((d) => [d.text(), d.fields.redelivered])).toEqual([
      ['1', true],
      ['2', true],
      ['3', true],
      ['5', false],
    ]);
    expect(again.map((d) => d.fields.deliveryTag)).toEqual([5, 6, 7, 8]);
  });

  it('puts a requeued message back in its original position, whatever the order of the requeues', async () => {
    // Classic queues requeue by original position: rejecting 3 and then 1 gives 1, 3, 4 (not 3, 1, 4
    // nor 4, 3, 1); 2, still unacked, is not among them.
    const q = await queueWith('requeue-position', ['1', '2', '3', '4']);
    const ch = await broker.channel();
    const [d1, d2, d3] = await getMany(ch, q, 3);
    d3?.reject({ requeue: true });
    d1?.nack({ requeue: true });
    const again = await getMany(ch, q, 3);
    expect(again.map((d) => [d.text(), d.fields.redelivered])).toEqual([
      ['1', true],
      ['3', true],
      ['4', false],
    ]);
    expect(await getOne(ch, q)).toBeUndefined();
    d2?.ack();
  });

  it('drops a message rejected or nacked without requeue (no dead-letter exchange)', async () => {
    const q = await queueWith('drop', ['1', '2', '3']);
    const ch = await broker.channel();
    const [d1, d2, d3] = await getMany(ch, q, 3);
    expect(d1?.reject({ requeue: false })).toBe(true);
    expect(d2?.nack({ requeue: false })).toBe(true);
    expect(d3?.ack()).toBe(true);
    await lastValueFrom(ch.close());
    const reader = await broker.channel();
    expect(await countsOf(reader, q)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('nacks every outstanding message with tag 0, multiple and requeue', async () => {
    const q = await queueWith('nack-zero', ['1', '2', '3']);
    const ch = await broker.channel();
    await getMany(ch, q, 3);
    ch.nack(0, { multiple: true, requeue: true });
    await eventually(
      () => countsOf(ch, q),
      (c) => c.messageCount === 3,
      'the requeue',
    );
    expect(await drain(ch, q)).toEqual(['1', '2', '3']);
  });

  describe('unknown delivery tags close the channel with 406', () => {
    it('for an ack, a reject and a nack of a tag never delivered', async () => {
      const conn = await broker.connection();
      for (const [settle, methodId] of [
        [(ch: Channel) => ch.ack(42), 80],
        [(ch: Channel) => ch.reject(42), 90],
        [(ch: Channel) => ch.nack(42), 120],
      ] as const) {
        const ch = await broker.channel(conn);
        expect(settle(ch)).toBe(true);
        expect(await closedWith(ch)).toEqual(
          channelError(406, 'PRECONDITION_FAILED - unknown delivery tag 42', 60, methodId),
        );
      }
      expect(conn.isOpen).toBe(true);
    });

    it('for a second ack of the same tag', async () => {
      const q = await queueWith('double-ack', ['1']);
      const ch = await broker.channel();
      const [d] = await getMany(ch, q, 1);
      expect(d?.ack()).toBe(true);
      // The delivery refuses a second settlement; the channel sends what it is told.
      expect(d?.ack()).toBe(false);
      ch.ack(d!.fields.deliveryTag);
      expect(await closedWith(ch)).toEqual(
        channelError(406, 'PRECONDITION_FAILED - unknown delivery tag 1', 60, 80),
      );
    });

    it('for the tag of a message delivered without acks', async () => {
      const q = await queueWith('noack-tag', ['1']);
      const ch = await broker.channel();
      const d = await getOne(ch, q, { noAck: true });
      ch.ack(d!.fields.deliveryTag);
      expect(await closedWith(ch)).toEqual(
        channelError(406, 'PRECONDITION_FAILED - unknown delivery tag 1', 60, 80),
      );
    });

    it("for another channel's tag, and a multiple ack beyond the last tag", async () => {
      const q = await queueWith('other-channel', ['1', '2']);
      const conn = await broker.connection();
      const owner = await broker.channel(conn);
      const [held] = await getMany(owner, q, 1);
      const other = await broker.channel(conn);
      other.ack(1);
      expect(await closedWith(other)).toEqual(
        channelError(406, 'PRECONDITION_FAILED - unknown delivery tag 1', 60, 80),
      );
      expect(owner.isOpen).toBe(true);
      owner.ack(5, { multiple: true });
      expect(await closedWith(owner)).toEqual(
        channelError(406, 'PRECONDITION_FAILED - unknown delivery tag 5', 60, 80),
      );
      // A delivery of a closed channel can no longer be settled: nothing is sent.
      expect(held?.ack()).toBe(false);
      // Nothing was acked: both messages are back, the first one redelivered.
      const reader = await broker.channel(conn);
      await eventually(
        () => countsOf(reader, q),
        (c) => c.messageCount === 2,
        'the requeue',
      );
      const back = [await getOne(reader, q, { noAck: true }), await getOne(reader, q, { noAck: true })];
      expect(back.map((d) => [d?.text(), d?.fields.redelivered])).toEqual([
        ['1', true],
        ['2', false],
      ]);
    });
  });
});
