/**
 * examples/first-program.ts written with amqplib, for comparison (docs/getting-started.md puts the two
 * side by side): declare a queue, publish 100 confirmed messages, consume them with acks, close.
 *
 * Run: npx tsx examples/first-program-amqplib.ts   (amqplib is a development dependency of rxamqp)
 */
import amqp from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const conn = await amqp.connect(url);
const ch = await conn.createConfirmChannel();
await ch.assertQueue('first-program', { durable: true });
for (let i = 0; i < 100; i++) ch.sendToQueue('first-program', Buffer.from(`job ${i}`));
await ch.waitForConfirms();
let received = 0;
await new Promise<void>((resolve) => {
  void ch.consume('first-program', (msg) => {
    if (msg === null) return;
    console.log(msg.content.toString());
    ch.ack(msg);
    if (++received === 100) resolve();
  });
});
await ch.close();
await conn.close();
