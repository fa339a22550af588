/**
 * The spec-based topology API: describe exchanges, queues, bindings and consumers as typed specs,
 * declare them all with `applyTopology`, and consume with `consumeSpec`. See docs/topology.md.
 *
 * @example
 * ```ts
 * import { applyTopology, binding, defineTopology, exchange, queue } from 'rxamqp';
 *
 * const logs = exchange({ name: 'logs', type: 'fanout' });
 * const mine = queue({ name: '', exclusive: true });
 * const t = defineTopology({ exchanges: [logs], queues: [mine], bindings: [binding({ exchange: logs, queue: mine })] });
 * connect(url).pipe(switchMap((conn) => applyTopology(conn, t))).subscribe((applied) => console.log(applied.queueName(mine)));
 * ```
 *
 * @module
 */
export {
  type AppliedTopology,
  type ApplyTopologyOptions,
  applyTopology,
  consumeSpec,
  type DeclaredQueue,
} from './apply.js';
export {
  type BindSpec,
  binding,
  type ConsumerSpec,
  consumer,
  defineTopology,
  describeStep,
  type ExchangeBindSpec,
  type ExchangeRef,
  type ExchangeSpec,
  type ExchangeType,
  exchange,
  exchangeArguments,
  exchangeRefName,
  planTopology,
  type QueueBindSpec,
  type QueueOverflow,
  type QueueRef,
  type QueueSpec,
  type QueueType,
  queue,
  queueArguments,
  type StreamOffset,
  type Topology,
  type TopologyStep,
  toConsumeOptions,
  toExchangeDeclare,
  toQueueDeclare,
  validateBinding,
  validateConsumer,
  validateExchange,
  validateQueue,
  validateTopology,
} from './specs.js';
