/**
 * The first program most people write: declare a queue, publish 100 confirmed messages, consume them
 * with acknowledgements, close. withChannel scopes the connection and the channel to the work, so
 * the program ends when the work does. examples/first-program-amqplib.ts is the same with amqplib.
 *
 * Run: npx tsx examples/first-program.ts   (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 */

import { connect, type Delivery, withChannel } from 'rxamqp';
import { ackOnSuccess, publishConfirmed } from 'rxamqp/operators';
import { concat, lastValueFrom, map, range, take } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'first-program';
const jobs = range(0, 100).pipe(map((i) => ({ exchange: '', routingKey: queue, body: `job ${i}` })));
const handle = (d: Delivery) => console.log(d.text());

await lastValueFrom(
  withChannel(connect(url), (ch) =>
    concat(
      ch.queueDeclare(queue, { durable: true }),
      ch.confirmSelect(),
      jobs.pipe(publishConfirmed(ch)),
      ch.consume(queue).pipe(take(100), ackOnSuccess(handle)),
    ),
  ),
);
