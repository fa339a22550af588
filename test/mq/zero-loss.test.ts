/**
 * `rxamqp/mq`, zero loss on each backend: 10,000 reliable unicast messages from a sender to a
 * receiver, both connected through a TCP proxy that cuts every connection 3 times during the run.
 * Every message must be received at least once; duplicates are counted and reported.
 */
import { from, lastValueFrom, type Subscription } from 'rxjs';
import { ackOnSuccess } from '../../operators/index.js';
import { sendEach } from '../../src/mq/index.js';
import { brokerEndpoint, brokerUrl } from '../support/broker.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { BACKENDS, MQTT_HOST, MQTT_PORT, SETTLE_MS, sleep, useMq } from './support.js';

const COUNT = 10_000;
const CUTS = 3;

jest.setTimeout(120_000);

describe.each(BACKENDS)('rxamqp/mq zero loss on $name', (backend) => {
  const mq = useMq(backend);
  let proxy: TcpProxy | undefined;

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it(`${COUNT} reliable unicast messages through ${CUTS} cuts: every one received at least once`, async () => {
    const target =
      backend.name === 'amqp'
        ? await brokerEndpoint().then((e) => ({ host: e.host, port: e.port }))
        : { host: MQTT_HOST, port: MQTT_PORT };
    proxy = await startTcpProxy(target);
    const url = backend.name === 'amqp' ? proxy.url(await brokerUrl()) : `mqtt://127.0.0.1:${proxy.port}`;
    const recovery = { reconnect: { delays: [50, 100, 200] } };
    const name = mq.name('mq.zeroloss');
    const counts = new Map<number, number>();
    let deliveries = 0;
    const receiver = (await mq.open({ name: 'zero-loss receiver', recovery }, url)).queue({
      name,
      role: 'receiver',
      amqp: { prefetch: 200 },
    });
    const sub: Subscription = receiver.messages$
      .pipe(
        ackOnSuccess(
          (m) => {
            const n = Number(m.text());
            counts.set(n, (counts.get(n) ?? 0) + 1);
            deliveries++;
          },
          { concurrency: 50 },
        ),
      )
      .subscribe({ error: (e: unknown) => console.error('receiver failed', e) });
    await sleep(SETTLE_MS);
    const sender = (await mq.open({ name: 'zero-loss sender', recovery }, url)).queue({
      name,
      role: 'sender',
    });
    const started = Date.now();
    let sent = 0;
    let cuts = 0;
    const sending = lastValueFrom(
      from(Array.from({ length: COUNT }, (_, i) => String(i))).pipe(sendEach(sender, { concurrency: 100 })),
      { defaultValue: undefined },
    ).then(() => {
      sent = COUNT;
    });
    // Cut while messages are moving: after a quarter, a half and three quarters have been received.
    for (const share of [0.25, 0.5, 0.75]) {
      while (counts.size < COUNT * share && Date.now() - started < 90_000) await sleep(10);
      proxy.cut();
      cuts++;
    }
    await sending;
    while (counts.size < COUNT && Date.now() - started < 100_000) await sleep(50);
    await sleep(300); // late duplicates
    sub.unsubscribe();
    const lost = Array.from({ length: COUNT }, (_, i) => i).filter((i) => !counts.has(i));
    const duplicates = deliveries - counts.size;
    console.log(
      `mq zero loss (${backend.name}): ${sent} sent, ${cuts} cuts, ${proxy.accepted} proxied connections, lost ${lost.length}, ${duplicates} duplicates (${deliveries} deliveries), ${Date.now() - started} ms`,
    );
    expect(cuts).toBe(CUTS);
    expect(proxy.accepted).toBeGreaterThanOrEqual(2 + 2 * CUTS);
    expect(lost).toEqual([]);
  });
});
