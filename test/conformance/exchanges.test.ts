/**
 * Conformance: exchanges. Declare and passive declare, the predeclared `amq.*` exchanges and the
 * reserved prefix (and that there is no `amq.default`), redeclares that do not match (type,
 * durable, auto-delete, internal, arguments), unknown exchange types (a connection error), delete
 * with if-unused, the default exchange's refusals, auto-delete exchanges, internal exchanges, and
 * publishing to an exchange that does not exist.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { backends } from './backends.js';
import {
  channelError,
  connectionError,
  connectionErrorOnChannel,
  countsOf,
  drain,
  errorOf,
  eventually,
  publish,
  shapeOf,
  useBroker,
  withTimeout,
} from './support.js';

describe.each(backends)('exchanges [$name]', (backend) => {
  const broker = useBroker(backend);

  it('has the predeclared amq.* exchanges of each type, which a passive declare finds', async () => {
    const ch = await broker.channel();
    for (const [x, type] of [
      ['amq.direct', 'direct'],
      ['amq.fanout', 'fanout'],
      ['amq.topic', 'topic'],
      ['amq.headers', 'headers'],
      ['amq.match', 'headers'],
    ] as const) {
      await lastValueFrom(ch.exchangeDeclare(x, type, { passive: true }));
    }
    expect(ch.isOpen).toBe(true);
  });

  it('refuses to declare a new amq.* name with 403, but accepts an equivalent redeclare of a predeclared one', async () => {
    // Unlike queues (where the amq. check comes first), the reserved prefix is checked only when the
    // exchange does not exist: amq.direct (durable) may be redeclared as it is, not otherwise.
    const ch = await broker.channel();
    await lastValueFrom(ch.exchangeDeclare('amq.direct', 'direct', { durable: true }));
    expect(await errorOf(ch.exchangeDeclare('amq.direct', 'direct', { durable: false }))).toEqual(
      channelError(
        406,
        `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.direct' in vhost '${broker.vhost}': received 'false' but current is 'true'`,
        40,
        10,
      ),
    );
    const ch2 = await broker.channel();
    expect(await errorOf(ch2.exchangeDeclare('amq.conformance', 'fanout'))).toEqual(
      channelError(
        403,
        `ACCESS_REFUSED - exchange name 'amq.conformance' contains reserved prefix 'amq.*'`,
        40,
        10,
      ),
    );
  });

  it('has no exchange named amq.default: the default exchange is only ""', async () => {
    const ch = await broker.channel();
    expect(await errorOf(ch.exchangeDeclare('amq.default', 'direct', { passive: true }))).toEqual(
      channelError(404, `NOT_FOUND - no exchange 'amq.default' in vhost '${broker.vhost}'`, 40, 10),
    );
  });

  it('fails a passive declare of a missing exchange with 404', async () => {
    const ch = await broker.channel();
    const x = broker.name('missing');
    expect(await errorOf(ch.exchangeDeclare(x, 'direct', { passive: true }))).toEqual(
      channelError(404, `NOT_FOUND - no exchange '${x}' in vhost '${broker.vhost}'`, 40, 10),
    );
  });

  it('accepts an identical redeclare and fails one with another type or durability with 406', async () => {
    const ch = await broker.channel();
    const x = broker.exchange('redeclare');
    await lastValueFrom(ch.exchangeDeclare(x, 'direct'));
    await lastValueFrom(ch.exchangeDeclare(x, 'direct'));
    // A passive declare ignores the type.
    await lastValueFrom(ch.exchangeDeclare(x, 'fanout', { passive: true }));
    expect(await errorOf(ch.exchangeDeclare(x, 'fanout'))).toEqual(
      channelError(
        406,
        `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${x}' in vhost '${broker.vhost}': received 'fanout' but current is 'direct'`,
        40,
        10,
      ),
    );
    const ch2 = await broker.channel();
    expect(await errorOf(ch2.exchangeDeclare(x, 'direct', { durable: true }))).toEqual(
      channelError(
        406,
        `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '${x}' in vhost '${broker.vhost}': received 'true' but current is 'false'`,
        40,
        10,
      ),
    );
  });

  it('fails a redeclare with another auto-delete, internal or alternate-exchange with 406', async () => {
    const x = broker.exchange('equivalence');
    await lastValueFrom((await broker.channel()).exchangeDeclare(x, 'direct'));
    for (const [options, text] of [
      [
        { autoDelete: true },
        `inequivalent arg 'auto_delete' for exchange '${x}' in vhost '${broker.vhost}': received 'true' but current is 'false'`,
      ],
      [
        { internal: true },
        `inequivalent arg 'internal' for exchange '${x}' in vhost '${broker.vhost}': received 'true' but current is 'false'`,
      ],
      [
        { arguments: { 'alternate-exchange': 'ae' } },
        `inequivalent arg 'alternate-exchange' for exchange '${x}' in vhost '${broker.vhost}': received the value 'ae' of type 'longstr' but current is none`,
      ],
    ] as const) {
      const ch = await broker.channel();
      expect(await errorOf(ch.exchangeDeclare(x, 'direct', options))).toEqual(
        channelError(406, `PRECONDITION_FAILED - ${text}`, 40, 10),
      );
    }
  });

  it('closes the connection with 503 COMMAND_INVALID for an unknown exchange type', async () => {
    const conn = await broker.connect();
    const ch = await broker.channel(conn);
    const x = broker.exchange('badtype');
    const failure = await errorOf(ch.exchangeDeclare(x, 'no-such-type'));
    expect(failure).toEqual(
      connectionErrorOnChannel(503, `COMMAND_INVALID - unknown exchange type 'no-such-type'`, 40, 10),
    );
    expect(conn.isOpen).toBe(false);
    expect(shapeOf(conn.error)).toEqual(
      connectionError(503, `COMMAND_INVALID - unknown exchange type 'no-such-type'`, 40, 10),
    );
  });

  it('deletes an exchange; deleting a missing one succeeds; if-unused refuses one with bindings with 406', async () => {
    const ch = await broker.channel();
    const x = broker.exchange('delete');
    await lastValueFrom(ch.exchangeDeclare(x, 'fanout'));
    const q = broker.queue('bound');
    await lastValueFrom(ch.queueDeclare(q));
    await lastValueFrom(ch.queueBind(q, x));
    expect(await errorOf(ch.exchangeDelete(x, { ifUnused: true }))).toEqual(
      channelError(406, `PRECONDITION_FAILED - exchange '${x}' in vhost '${broker.vhost}' in use`, 40, 20),
    );
    const ch2 = await broker.channel();
    await lastValueFrom(ch2.exchangeDelete(x));
    await lastValueFrom(ch2.exchangeDelete(x));
    expect(await errorOf(ch2.exchangeDeclare(x, 'fanout', { passive: true }))).toEqual(
      channelError(404, `NOT_FOUND - no exchange '${x}' in vhost '${broker.vhost}'`, 40, 10),
    );
    // Deleting the exchange removed its bindings; the queue stays.
    const ch3 = await broker.channel();
    expect(await countsOf(ch3, q)).toEqual({ messageCount: 0, consumerCount: 0 });
  });

  it('deletes an exchange with only exchange-to-exchange bindings under if-unused only when it is not their source', async () => {
    const ch = await broker.channel();
    const src = broker.exchange('e2e-src');
    const dst = broker.exchange('e2e-dst');
    await lastValueFrom(ch.exchangeDeclare(src, 'fanout'));
    await lastValueFrom(ch.exchangeDeclare(dst, 'fanout'));
    await lastValueFrom(ch.exchangeBind(dst, src));
    expect(await errorOf(ch.exchangeDelete(src, { ifUnused: true }))).toEqual(
      channelError(406, `PRECONDITION_FAILED - exchange '${src}' in vhost '${broker.vhost}' in use`, 40, 20),
    );
    // The destination of a binding is not "in use": if-unused looks at the bindings it is the source of.
    const ch2 = await broker.channel();
    await lastValueFrom(ch2.exchangeDelete(dst, { ifUnused: true }));
    await lastValueFrom(ch2.exchangeDelete(src, { ifUnused: true }));
  });

  it('refuses to declare or delete the default exchange, or delete an amq.* exchange, with 403', async () => {
    const declarer = await broker.channel();
    expect(await errorOf(declarer.exchangeDeclare('', 'direct'))).toEqual(
      channelError(403, `ACCESS_REFUSED - operation not permitted on the default exchange`, 40, 10),
    );
    const ch = await broker.channel();
    expect(await errorOf(ch.exchangeDelete(''))).toEqual(
      channelError(403, `ACCESS_REFUSED - operation not permitted on the default exchange`, 40, 20),
    );
    const ch2 = await broker.channel();
    expect(await errorOf(ch2.exchangeDelete('amq.direct'))).toEqual(
      channelError(
        403,
        `ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '${broker.vhost}' not allowed`,
        40,
        20,
      ),
    );
  });

  it('deletes an auto-delete exchange when its last binding goes, not before it had one', async () => {
    const ch = await broker.channel();
    const x = broker.exchange('autodelete');
    await lastValueFrom(ch.exchangeDeclare(x, 'direct', { autoDelete: true }));
    await lastValueFrom(ch.exchangeDeclare(x, 'direct', { passive: true }));
    const q = broker.queue('ad');
    await lastValueFrom(ch.queueDeclare(q));
    await lastValueFrom(ch.queueBind(q, x, 'a'));
    await lastValueFrom(ch.queueBind(q, x, 'b'));
    await lastValueFrom(ch.queueUnbind(q, x, 'a'));
    await lastValueFrom(ch.exchangeDeclare(x, 'direct', { passive: true }));
    await lastValueFrom(ch.queueUnbind(q, x, 'b'));
    const observer = await broker.channel();
    await eventually(
      () => errorOf(observer.exchangeDeclare(x, 'direct', { passive: true })).catch(() => undefined),
      (e) => e?.replyCode === 404,
      'the exchange to go',
    );
  });

  it('refuses a publish to an internal exchange with 403, and routes to it from another exchange', async () => {
    const ch = await broker.confirmChannel();
    const internal = broker.exchange('internal');
    const front = broker.exchange('front');
    await lastValueFrom(ch.exchangeDeclare(internal, 'fanout', { internal: true }));
    await lastValueFrom(ch.exchangeDeclare(front, 'fanout'));
    await lastValueFrom(ch.exchangeBind(internal, front));
    const q = broker.queue('behind-internal');
    await lastValueFrom(ch.queueDeclare(q));
    await lastValueFrom(ch.queueBind(q, internal));
    expect((await publish(ch, front, '', 'via front')).status).toBe('acked');
    expect(await drain(ch, q)).toEqual(['via front']);
    expect(await errorOf(ch.publish(internal, '', 'direct'))).toEqual(
      channelError(
        403,
        `ACCESS_REFUSED - cannot publish to internal exchange '${internal}' in vhost '${broker.vhost}'`,
        60,
        40,
      ),
    );
  });

  it('closes the channel with 404 for a publish to a missing exchange', async () => {
    const conn = await broker.connection();
    const ch = await broker.channel(conn);
    const x = broker.name('nowhere');
    // Without confirms the publish is "sent"; the broker's channel.close comes afterwards.
    expect(await publish(ch, x, 'k', 'lost')).toEqual({ status: 'sent' });
    await eventually(
      async () => ch.isOpen,
      (open) => !open,
      'the channel to close',
    );
    expect(shapeOf(ch.error)).toEqual(
      channelError(404, `NOT_FOUND - no exchange '${x}' in vhost '${broker.vhost}'`, 60, 40),
    );
    expect(conn.isOpen).toBe(true);
    // Under confirms the publish itself fails with the channel's error.
    const confirming = await broker.confirmChannel(conn);
    expect(await withTimeout(errorOf(confirming.publish(x, 'k', 'lost')), 'the publish to fail')).toEqual(
      channelError(404, `NOT_FOUND - no exchange '${x}' in vhost '${broker.vhost}'`, 60, 40),
    );
  });
});
