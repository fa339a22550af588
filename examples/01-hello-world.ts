/**
 * RabbitMQ tutorial 1, "Hello World!", with rxamqp: a sender puts 'Hello World!' on the queue `hello`,
 * a receiver takes it off. https://www.rabbitmq.com/tutorials/tutorial-one-javascript
 *
 *   npx tsx examples/01-hello-world.ts          # runs the sender, then the receiver
 *
 * Each side opens its own connection, as the tutorial's send and receive programs do. The broker is
 * AMQP_URL, or amqp://guest:guest@127.0.0.1:5672.
 */

import { connect } from 'rxamqp';
import { concat, switchMap, take, tap, timeout } from 'rxjs';

const url = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const queue = 'hello';

// The sender: connect, open a channel, declare the queue, publish through the default exchange ('').
const send$ = connect(url).pipe(
  switchMap((conn) => conn.channel()),
  switchMap((ch) => ch.queueDeclare(queue).pipe(switchMap(() => ch.publish('', queue, 'Hello World!')))),
  tap(() => console.log(" [x] Sent 'Hello World!'")),
  // publish emits once the message is on the socket. take(1) then ends the subscription, and ending it
  // closes the connection (the connection.close handshake), and the channel with it.
  take(1),
);

// The receiver: a consumer (basic.consume) with noAck, as in the tutorial. take(1) ends it after the
// first message, which cancels the consumer and closes the connection.
const receive$ = connect(url).pipe(
  switchMap((conn) => conn.channel()),
  switchMap((ch) => ch.queueDeclare(queue).pipe(switchMap(() => ch.consume(queue, { noAck: true })))),
  take(1),
  tap((delivery) => console.log(` [x] Received '${delivery.text()}'`)),
);

concat(send$, receive$)
  .pipe(timeout(10_000))
  .subscribe({
    error: (e: unknown) => {
      console.error(`hello world failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  });
