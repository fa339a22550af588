/**
 * Broadcast over `rxamqp/mq`, the same code on AMQP and on MQTT: two listeners on a broadcast queue
 * each receive every event a publisher sends (best effort here: no confirms, no acknowledgements).
 *
 * Run: npx tsx examples/mq-broadcast.ts
 *      MQ_URL=mqtt://localhost:1883 npx tsx examples/mq-broadcast.ts
 * Needs RabbitMQ on localhost:5672 (the default, amqp://localhost) or an MQTT broker (Mosquitto).
 */
import { connectMq, type MqConnection } from 'rxamqp/mq';
import { concatMap, filter, firstValueFrom, from, lastValueFrom, map, take, timeout, toArray } from 'rxjs';

const url = process.env.MQ_URL ?? 'amqp://localhost';
// A fixed name: the AMQP fanout exchange is durable (each listener's queue goes with it).
const name = 'examples.events';

async function main(): Promise<void> {
  const opened: MqConnection[] = [];
  const open = async (who: string): Promise<MqConnection> => {
    const mq = connectMq(url, { name: who });
    opened.push(mq);
    await firstValueFrom(
      mq.status$.pipe(
        filter((s) => s === 'connected'),
        timeout(10_000),
      ),
    );
    return mq;
  };
  try {
    const listeners = await Promise.all(['dashboard', 'audit'].map(open));
    const heard = listeners.map((mq) =>
      lastValueFrom(
        mq.queue({ name, role: 'receiver', pattern: 'broadcast', reliable: false }).messages$.pipe(
          map((m) => m.text()),
          take(5),
          toArray(),
          timeout(10_000),
        ),
      ),
    );
    await new Promise((r) => setTimeout(r, 300)); // the subscriptions are in place

    const events = (await open('publisher')).queue({
      name,
      role: 'sender',
      pattern: 'broadcast',
      reliable: false,
    });
    await lastValueFrom(
      from(['started', 'step 1', 'step 2', 'step 3', 'finished']).pipe(
        concatMap((e) => events.send(e, { contentType: 'text/plain' })),
        toArray(),
      ),
    );

    const [dashboard, audit] = await Promise.all(heard);
    console.log(`dashboard heard: ${dashboard?.join(', ')}`);
    console.log(`audit heard:     ${audit?.join(', ')}`);
  } finally {
    await Promise.all(opened.map((mq) => lastValueFrom(mq.close(), { defaultValue: undefined })));
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
