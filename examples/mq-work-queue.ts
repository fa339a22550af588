/**
 * A work queue over `rxamqp/mq`, the same code on AMQP and on MQTT: two workers share a reliable
 * unicast queue (each job goes to one of them, and is acknowledged once handled), a producer sends
 * ten jobs and waits for the broker to take each one.
 *
 * Run: npx tsx examples/mq-work-queue.ts
 *      MQ_URL=mqtt://localhost:1883 npx tsx examples/mq-work-queue.ts
 *      MQ_URL=mqtts://mq.example.com:8883 MQ_CA=/etc/ssl/mq-ca.pem npx tsx examples/mq-work-queue.ts
 * Needs RabbitMQ on localhost:5672 (the default, amqp://localhost) or an MQTT broker (Mosquitto).
 * Over TLS (amqps://, mqtts://), MQ_CA names the PEM file of a private CA that signed the broker's
 * certificate.
 */
import { readFileSync } from 'node:fs';
import { connectMq, type MqConnection, sendEach } from 'rxamqp/mq';
import { ackOnSuccess } from 'rxamqp/operators';
import { filter, firstValueFrom, from, lastValueFrom, merge, take, timeout, toArray } from 'rxjs';

const url = process.env.MQ_URL ?? 'amqp://localhost';
// A private CA for TLS: given to both backends' options (each reads its own).
const ca = process.env.MQ_CA === undefined ? undefined : readFileSync(process.env.MQ_CA, 'utf8');
const tls = ca === undefined ? {} : { amqp: { tls: { ca } }, mqtt: { tls: { ca } } };
// A fixed name: the AMQP queue is durable, and each run leaves it empty for the next.
const name = 'examples.jobs';

async function main(): Promise<void> {
  const opened: MqConnection[] = [];
  const open = async (who: string): Promise<MqConnection> => {
    const mq = connectMq(url, { name: who, ...tls });
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
    // Two workers, each on its own connection; a job is handled by one of them.
    const workers = await Promise.all(['worker-a', 'worker-b'].map(open));
    const done = lastValueFrom(
      merge(
        ...workers.map((mq, i) =>
          mq.queue({ name, role: 'receiver', amqp: { prefetch: 1 } }).messages$.pipe(
            ackOnSuccess(async (job) => {
              await new Promise((r) => setTimeout(r, 20)); // the work
              return `${job.text()} by worker-${'ab'[i]}`;
            }),
          ),
        ),
      ).pipe(take(10), toArray(), timeout(15_000)),
    );
    await new Promise((r) => setTimeout(r, 300)); // the workers' consumers or subscriptions are in place

    const producer = (await open('producer')).queue({ name, role: 'sender' });
    const jobs = Array.from({ length: 10 }, (_, i) => `job-${i + 1}`);
    await lastValueFrom(from(jobs).pipe(sendEach(producer, { concurrency: 5 }), toArray()));
    console.log(
      `sent ${jobs.length} jobs over ${new URL(url).protocol.replace(':', '')}; the broker took each one`,
    );

    const handled = await done;
    for (const line of handled) console.log(line);
    const byA = handled.filter((l) => l.endsWith('worker-a')).length;
    console.log(`worker-a handled ${byA}, worker-b ${handled.length - byA}`);
  } finally {
    await Promise.all(opened.map((mq) => lastValueFrom(mq.close(), { defaultValue: undefined })));
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
