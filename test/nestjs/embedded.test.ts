/**
 * `rxamqp/nestjs` on the embedded broker of `rxamqp/testing`: the recipe of docs/nestjs.md for testing
 * an application's handlers without RabbitMQ (the module's connection gets the broker's connector),
 * and the module's recovery when the broker drops the connection.
 */
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, type Observable } from 'rxjs';
import {
  AmqpPayload,
  Consume,
  getTopologyToken,
  InjectPublisher,
  Rpc,
  RxAmqpModule,
} from '../../src/nestjs/index.js';
import { openConnection, type Publisher } from '../../src/node.js';
import { EmbeddedBroker } from '../../src/testing/index.js';
import type { AppliedTopology } from '../../src/topology/apply.js';
import type { QueueSpec } from '../../src/topology/specs.js';
import { until } from './support.js';

@Injectable()
class Orders {
  readonly handled: number[] = [];

  constructor(@InjectPublisher() readonly publisher: Publisher) {}

  @Consume({ queue: 'orders', exchange: { name: 'shop', type: 'topic' }, routingKeys: ['order.*'] })
  handle(@AmqpPayload('id') id: number): void {
    this.handled.push(id);
  }

  @Rpc({ queue: 'rpc.double' })
  double(@AmqpPayload() n: number): number {
    return n * 2;
  }
}

/** A server-named queue of the module's topology: its name comes from the broker. */
const INBOX: QueueSpec = { name: '', exclusive: true };

describe('RxAmqpModule on the embedded broker', () => {
  it('handlers, request/reply and recovery without RabbitMQ', async () => {
    const broker = new EmbeddedBroker();
    const app = await Test.createTestingModule({
      imports: [
        RxAmqpModule.forRoot({
          url: 'amqp://guest:guest@embedded',
          connection: { transport: broker.connector, recovery: { reconnect: { delays: [10] } } },
          topology: { queues: [INBOX] },
        }),
      ],
      providers: [Orders],
    }).compile();
    await app.init();
    const orders = app.get(Orders);
    try {
      // The applied topology, injectable: the broker's name for the server-named queue.
      const topology$ = app.get<Observable<AppliedTopology>>(getTopologyToken());
      const inbox = (await firstValueFrom(topology$)).queueName(INBOX);
      expect(inbox).toMatch(/^amq\.gen-/);

      await lastValueFrom(orders.publisher.publish('shop', 'order.placed', JSON.stringify({ id: 1 })));
      await until(() => orders.handled.length === 1, 3000, 'the first order');

      const client = await openConnection('amqp://guest:guest@embedded', { transport: broker.connector });
      const ch = await client.openChannel();
      const reply = await lastValueFrom(ch.request('', 'rpc.double', '21', {}, { timeoutMs: 2000 }));
      expect(reply.json()).toBe(42);
      await lastValueFrom(client.close());

      // The broker drops the module's connection: it comes back, and so does the handler.
      for (const info of broker.connections()) broker.dropConnection(info);
      await lastValueFrom(orders.publisher.publish('shop', 'order.paid', JSON.stringify({ id: 2 })));
      await until(() => orders.handled.length === 2, 3000, 'the order after the drop');
      expect(orders.handled).toEqual([1, 2]);
      // Declared again on the new connection: a new name.
      const again = (await firstValueFrom(topology$)).queueName(INBOX);
      expect(again).toMatch(/^amq\.gen-/);
      expect(again).not.toBe(inbox);
    } finally {
      await app.close();
    }
  });
});
