/** RabbitMQ's direct reply-to (amq.rabbitmq.reply-to), through the client's request(). */
import { lastValueFrom } from 'rxjs';
import { connectTo, EmbeddedBroker, rejection, text } from './helpers.js';

describe('direct reply-to', () => {
  it('carries a request and its reply (channel.request)', async () => {
    const broker = new EmbeddedBroker();
    const server = await connectTo(broker);
    const sch = await server.openChannel();
    await lastValueFrom(sch.queueDeclare('rpc'));
    sch.consume('rpc').subscribe((req) => {
      expect(req.properties.replyTo).toMatch(/^amq\.rabbitmq\.reply-to\.[A-Za-z0-9_-]{22}$/);
      sch
        .publish('', req.properties.replyTo!, `re: ${text(req.body)}`, {
          correlationId: req.properties.correlationId,
        })
        .subscribe();
      req.ack();
    });
    const client = await connectTo(broker);
    const cch = await client.openChannel();
    const reply = await lastValueFrom(cch.request('', 'rpc', 'ping'));
    expect(text(reply.body)).toBe('re: ping');
    await lastValueFrom(client.close());
    await lastValueFrom(server.close());
  });

  it('refuses an acknowledging reply consumer and a request without one, as RabbitMQ', async () => {
    const broker = new EmbeddedBroker();
    const conn = await connectTo(broker);
    const ch = await conn.openChannel();
    const e = await rejection(lastValueFrom(ch.consume('amq.rabbitmq.reply-to')));
    expect(e).toMatchObject({
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - reply consumer cannot acknowledge',
    });
    const ch2 = await conn.openChannel();
    ch2.publish('', 'q', 'x', { replyTo: 'amq.rabbitmq.reply-to' }).subscribe({ error: () => {} });
    const e2 = await rejection(lastValueFrom(ch2.queueDeclare('', { exclusive: true })));
    expect(e2).toMatchObject({
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - fast reply consumer does not exist',
    });
    await lastValueFrom(conn.close());
  });

  it('delivers a mandatory reply and also returns it as unroutable, as RabbitMQ 3.10 does', async () => {
    const broker = new EmbeddedBroker();
    const conn = await connectTo(broker);
    const requester = await conn.openChannel();
    const replies: string[] = [];
    requester.consume('amq.rabbitmq.reply-to', { noAck: true }).subscribe((d) => replies.push(text(d.body)));
    await lastValueFrom(requester.queueDeclare('rpc'));
    await lastValueFrom(requester.publish('', 'rpc', 'ping', { replyTo: 'amq.rabbitmq.reply-to' }));
    const responder = await conn.openChannel();
    const req = await lastValueFrom(responder.get('rpc', { noAck: true }));
    await lastValueFrom(responder.confirmSelect());
    const outcome = await lastValueFrom(
      responder.publish('', req.properties.replyTo!, 'pong', {}, { mandatory: true }),
    );
    expect(outcome.status).toBe('returned');
    expect(replies).toEqual(['pong']);
    await lastValueFrom(conn.close());
  });
});
