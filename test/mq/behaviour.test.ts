/**
 * `rxamqp/mq`: one behaviour suite, run against both backends (RabbitMQ on 5672, Mosquitto on 1883):
 * unicast spreads across receivers with each message delivered once, broadcast reaches every
 * receiver, reliable sends complete once the broker took them, best effort works, content types
 * travel, nack redelivers (AMQP), receivers resume after a reconnect, and bad names or misuse give
 * typed errors.
 */
import {
  filter,
  firstValueFrom,
  from,
  lastValueFrom,
  map,
  type Subscription,
  take,
  timeout,
  toArray,
} from 'rxjs';
import { ackOnSuccess, decodeJson } from '../../operators/index.js';
import { MqError, type MqMessage, sendEach } from '../../src/mq/index.js';
import { ConfigurationError, openConnection } from '../../src/node.js';
import { brokerEndpoint, brokerUrl } from '../support/broker.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { BACKENDS, connected, MQTT_HOST, MQTT_PORT, SETTLE_MS, sleep, useMq } from './support.js';

describe.each(BACKENDS)('rxamqp/mq on $name', (backend) => {
  const mq = useMq(backend);

  it('unicast: 30 messages spread over 3 receivers (3 connections), each delivered once', async () => {
    const name = mq.name('mq.unicast');
    const got = new Map<string, number>();
    const byReceiver = [0, 0, 0];
    const subs: Subscription[] = [];
    for (let r = 0; r < 3; r++) {
      const conn = await mq.open({ name: `receiver ${r}` });
      const queue = conn.queue({ name, role: 'receiver', amqp: { prefetch: 1 } });
      subs.push(
        queue.messages$
          .pipe(
            ackOnSuccess(async (m) => {
              await sleep(5);
              got.set(m.text(), (got.get(m.text()) ?? 0) + 1);
              byReceiver[r]!++;
            }),
          )
          .subscribe(),
      );
    }
    await sleep(SETTLE_MS);
    const sender = (await mq.open({ name: 'sender' })).queue({ name, role: 'sender' });
    const bodies = Array.from({ length: 30 }, (_, i) => `m${i}`);
    await lastValueFrom(from(bodies).pipe(sendEach(sender, { concurrency: 10 }), toArray()));
    for (let i = 0; i < 100 && got.size < 30; i++) await sleep(50);
    await sleep(200);
    for (const s of subs) s.unsubscribe();
    expect([...got.keys()].sort()).toEqual([...bodies].sort());
    expect([...got.values()].every((n) => n === 1)).toBe(true);
    expect(byReceiver.every((n) => n > 0)).toBe(true);
  });

  it('broadcast: every receiver gets every message', async () => {
    const name = mq.name('mq.broadcast');
    const receivers = await Promise.all(
      [0, 1].map(async (r) =>
        (await mq.open({ name: `receiver ${r}` })).queue({ name, role: 'receiver', pattern: 'broadcast' }),
      ),
    );
    const results = receivers.map((q) =>
      firstValueFrom(
        q.messages$.pipe(
          ackOnSuccess((m) => m.text()),
          take(10),
          toArray(),
          timeout(10_000),
        ),
      ),
    );
    await sleep(SETTLE_MS);
    const sender = (await mq.open()).queue({ name, role: 'sender', pattern: 'broadcast' });
    const bodies = Array.from({ length: 10 }, (_, i) => `b${i}`);
    await lastValueFrom(from(bodies).pipe(sendEach(sender), toArray()));
    for (const r of await Promise.all(results)) expect(r.sort()).toEqual([...bodies].sort());
  });

  it('reliable: send completes once the broker took the message; content type and payload arrive', async () => {
    const name = mq.name('mq.reliable');
    const conn = await mq.open();
    const receiver = conn.queue({ name, role: 'receiver' });
    // Held open while the message is settled (unsubscribing stops the consumer and, on AMQP, closes
    // its channel: its deliveries could no longer be acked).
    let resolveFirst: (m: MqMessage) => void = () => {};
    const first = new Promise<MqMessage>((r) => {
      resolveFirst = r;
    });
    const held = receiver.messages$.subscribe((m) => resolveFirst(m));
    await sleep(SETTLE_MS);
    const sender = conn.queue({ name, role: 'sender' });
    expect(sender.reliable).toBe(true);
    await lastValueFrom(sender.send(JSON.stringify({ id: 7 }), { contentType: 'application/json' }), {
      defaultValue: undefined,
    });
    const m: MqMessage = await first;
    expect(m.json()).toEqual({ id: 7 });
    expect(m.properties.contentType).toBe('application/json');
    expect(m.settled).toBe(false);
    expect(m.ack()).toBe(true);
    expect(m.ack()).toBe(false); // settled once
    held.unsubscribe();
  });

  it('decodeJson and ackOnSuccess settle mq messages as they settle deliveries', async () => {
    const name = mq.name('mq.operators');
    const conn = await mq.open();
    const results = firstValueFrom(
      conn.queue({ name, role: 'receiver' }).messages$.pipe(
        decodeJson<{ n: number }, MqMessage>({ onError: 'reject' }),
        map(({ delivery, value }) => {
          delivery.ack();
          return value.n * 2;
        }),
        take(2),
        toArray(),
        timeout(10_000),
      ),
    );
    await sleep(SETTLE_MS);
    const sender = conn.queue({ name, role: 'sender' });
    for (const body of ['{"n":1}', 'not json', '{"n":2}'])
      await lastValueFrom(sender.send(body), { defaultValue: undefined });
    expect(await results).toEqual([2, 4]);
  });

  it('best effort: sends and receives with no acknowledgement (messages come settled)', async () => {
    const name = mq.name('mq.besteffort');
    const conn = await mq.open();
    const receiver = conn.queue({ name, role: 'receiver', reliable: false });
    const got = firstValueFrom(receiver.messages$.pipe(take(5), toArray(), timeout(10_000)));
    await sleep(SETTLE_MS);
    const sender = conn.queue({ name, role: 'sender', reliable: false });
    for (let i = 0; i < 5; i++) await lastValueFrom(sender.send(`e${i}`), { defaultValue: undefined });
    const messages = await got;
    expect(messages.map((m) => m.text())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(messages.every((m) => m.settled && !m.ack())).toBe(true);
  });

  it('a receiver resumes by itself after the connection is cut', async () => {
    const target =
      backend.name === 'amqp'
        ? await brokerEndpoint().then((e) => ({ host: e.host, port: e.port }))
        : { host: MQTT_HOST, port: MQTT_PORT };
    const proxy = await startTcpProxy(target);
    try {
      const url = backend.name === 'amqp' ? proxy.url(await brokerUrl()) : `mqtt://127.0.0.1:${proxy.port}`;
      const name = mq.name('mq.resume');
      const conn = await mq.open({ recovery: { reconnect: { delays: [100] } } }, url);
      const statuses: string[] = [];
      conn.status$.subscribe((s) => statuses.push(s));
      const seen: string[] = [];
      const all = firstValueFrom(
        conn.queue({ name, role: 'receiver' }).messages$.pipe(
          ackOnSuccess((m) => {
            seen.push(m.text());
            return m.text();
          }),
          filter((t) => t === 'after'),
          timeout(15_000),
        ),
      );
      await sleep(SETTLE_MS);
      const sender = (await mq.open()).queue({ name, role: 'sender' });
      await lastValueFrom(sender.send('before'), { defaultValue: undefined });
      for (let i = 0; i < 50 && !seen.includes('before'); i++) await sleep(20);
      proxy.cut();
      await firstValueFrom(
        conn.status$.pipe(
          filter((s) => s === 'disconnected'),
          timeout(5_000),
        ),
      );
      await connected(conn);
      await sleep(SETTLE_MS);
      await lastValueFrom(sender.send('after'), { defaultValue: undefined });
      expect(await all).toBe('after');
      expect(seen).toContain('before');
      expect(statuses).toEqual(expect.arrayContaining(['connected', 'disconnected', 'connecting']));
    } finally {
      await proxy.close();
    }
  });

  it('close() with a receiver subscribed completes it and ends the connection; status$ then says closed', async () => {
    const name = mq.name('mq.close');
    const conn = await mq.open();
    const ended = new Promise<string>((resolve) => {
      conn.queue({ name, role: 'receiver' }).messages$.subscribe({
        complete: () => resolve('complete'),
        error: (e: unknown) => resolve(`error ${e}`),
      });
    });
    await sleep(SETTLE_MS);
    await lastValueFrom(conn.close().pipe(timeout(5_000)));
    expect(await ended).toBe('complete');
    expect(await firstValueFrom(conn.status$.pipe(timeout(1_000)))).toBe('closed');
  });

  it('bad names, bad options and a queue used in the wrong role give typed errors', async () => {
    const conn = await mq.open();
    for (const name of ['', 'Jobs', 'jobs..x', '.jobs', 'jobs/x', 'jobs x', 'jobs.', 'a+b', '#']) {
      expect(() => conn.queue({ name, role: 'sender' })).toThrow(ConfigurationError);
    }
    expect(() => conn.queue({ name: 'x', role: 'both' as never })).toThrow(ConfigurationError);
    expect(() => conn.queue({ name: 'x', role: 'receiver', pattern: 'anycast' as never })).toThrow(
      ConfigurationError,
    );
    expect(() => conn.queue({ name: 'x', role: 'receiver', amqp: { prefetch: 0 } })).toThrow(
      ConfigurationError,
    );
    expect(() => conn.queue({ name: 'x', role: 'receiver', mqtt: { qos: 2 as never } })).toThrow(
      ConfigurationError,
    );
    expect(() => conn.queue({ name: 'x', role: 'receiver', mqtt: { group: 'a/b' } })).toThrow(
      ConfigurationError,
    );
    const receiver = conn.queue({ name: 'x.y', role: 'receiver' });
    const sender = conn.queue({ name: 'x.y', role: 'sender' });
    await expect(lastValueFrom(receiver.send('no'))).rejects.toMatchObject({
      name: 'MqError',
      code: 'MQ_NOT_A_SENDER',
    });
    await expect(lastValueFrom(sender.messages$)).rejects.toMatchObject({ code: 'MQ_NOT_A_RECEIVER' });
    await lastValueFrom(conn.close());
    expect(() => conn.queue({ name: 'x', role: 'sender' })).toThrow(MqError);
    await expect(lastValueFrom(sender.send('late'))).rejects.toMatchObject({ code: 'MQ_CLOSED' });
  });
});

describe('rxamqp/mq on amqp only', () => {
  const mq = useMq(BACKENDS[0]!);

  it('nack redelivers the message (redelivered: true)', async () => {
    const name = mq.name('mq.nack');
    const conn = await mq.open();
    const seen = firstValueFrom(
      conn.queue({ name, role: 'receiver' }).messages$.pipe(
        map((m) => {
          if (!m.fields.redelivered) m.nack();
          else m.ack();
          return `${m.text()}:${m.fields.redelivered}`;
        }),
        take(2),
        toArray(),
        timeout(10_000),
      ),
    );
    await sleep(SETTLE_MS);
    await lastValueFrom(conn.queue({ name, role: 'sender' }).send('again'), { defaultValue: undefined });
    expect(await seen).toEqual(['again:false', 'again:true']);
  });

  it('reliable unicast maps to a durable queue holding persistent messages, broadcast to a fanout exchange', async () => {
    const name = mq.name('mq.mapping');
    const conn = await mq.open();
    const sender = conn.queue({ name, role: 'sender' });
    for (let i = 0; i < 3; i++) await lastValueFrom(sender.send(`p${i}`), { defaultValue: undefined });
    const check = await openConnection(await brokerUrl(), { name: 'rxamqp mq mapping check' });
    try {
      const ch = await check.openChannel();
      const ok = await lastValueFrom(ch.queueDeclare(name, { durable: true, passive: true }));
      expect(ok.messageCount).toBe(3);
      const d = await lastValueFrom(ch.get(name, { noAck: true }));
      expect(d?.properties.deliveryMode).toBe(2);
      await lastValueFrom(conn.queue({ name, role: 'sender', pattern: 'broadcast' }).send('fan'), {
        defaultValue: undefined,
      });
      // The fanout exchange exists (a passive declare of another type would close the channel).
      await lastValueFrom(ch.exchangeDeclare(name, 'fanout', { durable: true, passive: true }));
    } finally {
      await lastValueFrom(check.close());
    }
  });
});
