/**
 * The marble kit of `rxamqp/testing`: fake deliveries, channels (publish targets), queues and
 * connections for `TestScheduler.run` and rxjs-marbles, implementing the interfaces the operators take
 * (`SettleableMessage`: the deliveries are real `Delivery` objects; `PublishTarget`: `publish` and
 * `publishWith`), so that a whole pipeline (consume, decode, process, publish, settle) is tested in
 * virtual time, without a broker.
 *
 * - {@link marbleKit} binds a kit to the test's scheduler and marble helpers (an rxjs-marbles context,
 *   RxJS's run helpers plus the scheduler, or a `TestScheduler`).
 * - `kit.channel()` makes a {@link FakeChannel}: deliveries on a marble (`cold`, `hot`) whose
 *   settlements are a marble too (`settlements$`, checked against the broker's view of delivery tags),
 *   and publishes recorded on `published$` and answered by a script (`reply`: acks after a delay,
 *   nacks, returns, errors).
 * - `kit.queue()` makes a {@link FakeQueue} that fake channels consume and publish to, with requeues
 *   and redeliveries.
 * - `kit.connection()` makes a {@link FakeConnectionObservable} that connects, drops and recovers on a
 *   marble, with `state$`.
 *
 * @example
 * ```ts
 * import { marbleKit, published, settlement } from 'rxamqp/testing';
 * import { answerRequests } from 'rxamqp/operators';
 * import { marbles } from 'rxjs-marbles/jest';
 *
 * it('answers and acks once the reply is confirmed', marbles((m) => {
 *   const channel = marbleKit(m).channel({ reply: '--a' }); // confirms 2 frames after each publish
 *   const requests = channel.cold('-a|', { a: { body: 'hi', properties: { replyTo: 'r', correlationId: 'c' } } });
 *   m.expect(requests.pipe(answerRequests(channel, (r) => r.text().toUpperCase()))).toBeObservable('---(x|)', { x: 'HI' });
 *   m.expect(channel.published$).toBeObservable('-p', { p: published('', 'r', 'HI', { properties: { correlationId: 'c' } }) });
 *   m.expect(channel.settlements$).toBeObservable('---a', { a: settlement.ack(1) });
 * }));
 * ```
 *
 * @module
 */
export { type DeliveryStream, FakeChannel } from './channel.js';
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
export type {
  ChannelEvent,
  FakeChannelOptions,
  PublishInfo,
  Reply,
  ReplyScript,
} from './types.js';
