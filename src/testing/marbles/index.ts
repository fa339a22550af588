/**
 * The marble kit of `rxamqp/testing`: fake deliveries, channels (publish targets), queues and
 * connections for `TestScheduler.run` and rxjs-marbles, implementing the interfaces the operators take.
 *
 * @module
 */
export {
  type ChannelEvent,
  type DeliveryStream,
  FakeChannel,
  type FakeChannelOptions,
  type PublishInfo,
  type Reply,
  type ReplyScript,
} from './channel.js';
export { FakeConnection, FakeConnectionObservable, type FakeConnectionOptions } from './connection.js';
export type { MarbleContext, MarbleFactory, SubscriptionLogs } from './context.js';
export { MarbleKit, type MarbleKitOptions, marbleKit, outcome } from './kit.js';
export {
  type FakeBody,
  type FakeMessage,
  type FakeMessageInit,
  type PublishedMessage,
  published,
} from './message.js';
export { FakeQueue, type QueuedMessage } from './queue.js';
export { type Settlement, settlement } from './settlement.js';
