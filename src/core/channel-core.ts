/**
 * The channel state machine: channel.open, one synchronous method in flight with the rest queued in
 * order, `nowait` methods kept in that order, the close handshakes in both directions, and routing of
 * asynchronous methods and content (returns, deliveries, confirms). Callback based, like the
 * connection core, so that nothing becomes an unhandled rejection.
 *
 * @module
 * @internal
 */

import {
  ChannelClosedError,
  type CloseReason,
  type ConnectionClosedError,
  type HeadersDecodeError,
  isConsumerTimeout,
} from '../errors.js';
import type { ContentMethod } from '../protocol/frame-decoder.js';
import type { BasicProperties, Method, MethodInit, MethodName } from '../protocol/generated.js';
import { ReplyCode } from '../protocol/generated.js';
import { rearm, type Timer } from '../util/runtime.js';
import { AckTracker, type SettleKind, type SettleOut } from './ack-tracker.js';
import type { ChannelEndpoint, ConnectionCore } from './connection-core.js';

/** A reply: a method, or a basic.get-ok with its content. */
export type Reply =
  | Method
  | {
      readonly name: 'basic.get-ok';
      readonly method: ContentMethod;
      readonly properties: BasicProperties;
      readonly body: Uint8Array;
      readonly headersError: HeadersDecodeError | undefined;
    };

/** A synchronous (or nowait) method waiting for its turn or its reply. */
interface Rpc {
  readonly method: MethodInit;
  /** The methods that answer it; empty for nowait methods (done once flushed). */
  readonly replies: readonly MethodName[];
  readonly onReply: (reply: Reply | undefined) => void;
  readonly onError: (error: Error) => void;
  /** Where the operation was started, for errors that close the channel. */
  readonly stack: CapturedStack | undefined;
  cancelled: boolean;
  /** Handed to the connection's writer: past the point where it can be withdrawn. */
  written: boolean;
  /** Written at the next flush rather than at once (see `CallOptions.deferred`). */
  deferred: boolean;
  /** For an asynchronous send kept in order (a publish): what to run when its turn comes. */
  readonly run?: () => void;
}

/** Options of {@link ChannelCore.call}. */
export interface CallOptions {
  /**
   * Write the method when the connection flushes (the end of the turn) rather than at once, so that
   * an operation withdrawn in the turn it was started sends nothing (a consumer subscribed and
   * unsubscribed at once). Later operations of the channel stay behind it.
   */
  readonly deferred?: boolean;
}

const ORDERED: MethodInit = { name: 'basic.publish' };
const NO_HANDLE: RpcHandle = { cancel: () => {}, withdraw: () => false };

/** A handle to cancel an operation: before it is sent it is dropped; after, its reply is ignored. */
export interface RpcHandle {
  cancel(): void;
  /**
   * Drops the operation if it has not been written yet and returns true; returns false, changing
   * nothing, when it was (its reply will then be delivered as usual).
   */
  withdraw(): boolean;
}

/** The handle of one operation: an object with methods rather than closures, as consumers keep theirs. */
class Handle implements RpcHandle {
  constructor(private readonly rpc: Rpc) {}

  cancel(): void {
    this.rpc.cancelled = true;
  }

  withdraw(): boolean {
    const rpc = this.rpc;
    if (rpc.written || rpc.cancelled) return false;
    rpc.cancelled = true;
    return true;
  }
}

function handleOf(rpc: Rpc): RpcHandle {
  return new Handle(rpc);
}

/** What the channel tells the layer above. */
export interface ChannelListener {
  opened(): void;
  /** The channel ended: undefined when the client closed it. Called once. */
  closed(error: ChannelClosedError | undefined): void;
  /** A mandatory message came back unroutable. */
  returned?(
    method: Extract<ContentMethod, { name: 'basic.return' }>,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void;
  /** A message for a consumer. */
  delivered?(
    method: Extract<ContentMethod, { name: 'basic.deliver' }>,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void;
  /** A publisher confirm (basic.ack / basic.nack from the broker). */
  confirmed?(method: Extract<Method, { name: 'basic.ack' | 'basic.nack' }>): void;
  /** confirm.select is being written: the publishes written after it are numbered by the broker. */
  confirmSelected?(): void;
  /** The broker cancelled a consumer. */
  consumerCancelled?(consumerTag: string): void;
}

type State = 'new' | 'opening' | 'open' | 'closing' | 'closed';

/** @internal */
export class ChannelCore implements ChannelEndpoint {
  id = 0;
  private state: State = 'new';
  /**
   * Operations waiting for their turn, from `queueHead` on: taken by moving the head rather than by
   * `shift()`, which copies the rest of the array when many publishes wait behind a method in flight
   * (100,000 publishes behind a consumer's basic.consume took seconds). Compacted as it drains.
   */
  private queue: Rpc[] = [];
  private queueHead = 0;
  /**
   * Publishes of this channel waiting at the connection for the socket to drain (or for an unblock):
   * methods called meanwhile wait behind them (see `call`). Counted by the publish path.
   */
  publishesWaiting = 0;
  private inFlight: Rpc | undefined;
  private closeRequested = false;
  private closeError: ChannelClosedError | undefined;
  /** Who waits for the close to finish (made by the first `close(done)`). */
  private closeWaiters: (() => void)[] | undefined;
  /** Outstanding delivery tags, and the acks held until the connection flushes (see `acks`). */
  private ackTracker: AckTracker | undefined;
  /** The held acks go out at the next connection flush. */
  private acksQueued = false;
  /** Sends the held acks after `ackDelay` (made once, then refreshed). */
  private ackTimer: Timer | undefined;
  private ackTimerArmed = false;
  /** The smallest prefetch sent with basic.qos on this channel (0: none, no limit). */
  private prefetch = 0;
  /** A deferred operation waits at the head of the queue for the next flush. */
  private deferredArmed = false;
  // Callbacks handed to the connection and to timers, made when first needed: an idle channel keeps
  // none of them.
  private writeDeferredTask: (() => void) | undefined;
  private get writeDeferred(): () => void {
    this.writeDeferredTask ??= () => {
      this.deferredArmed = false;
      const head = this.queue[this.queueHead];
      if (head !== undefined) head.deferred = false;
      this.pump();
    };
    return this.writeDeferredTask;
  }
  private flushAcksTask: (() => void) | undefined;
  private get flushAcks(): () => void {
    this.flushAcksTask ??= () => {
      this.acksQueued = false;
      this.disarmAckTimer();
      if (this.state === 'open') this.ackTracker?.flush();
    };
    return this.flushAcksTask;
  }
  /** The ack timer fired: it stays usable (refresh() re-arms a timer that fired, not one cleared). */
  private ackTimerFiredTask: (() => void) | undefined;
  private get ackTimerFired(): () => void {
    this.ackTimerFiredTask ??= () => {
      this.ackTimerArmed = false;
      this.flushAcks();
    };
    return this.ackTimerFiredTask;
  }

  /** The ack tracker, made with the first delivery or settlement. */
  private get acks(): AckTracker {
    this.ackTracker ??= new AckTracker((kind, deliveryTag, multiple, requeue) =>
      this.connection.sendMethod(this.id, settlement(kind, deliveryTag, multiple, requeue)),
    );
    return this.ackTracker;
  }

  /** Told of every settlement when the connection's telemetry follows deliveries (undefined otherwise). */
  settlements: SettleOut | undefined = undefined;
  /**
   * Told when the broker takes unsettled deliveries back while the channel stays open (from `fromTag`
   * on), when the connection's telemetry follows deliveries (undefined otherwise).
   */
  forgotten: ((fromTag: number, why: 'consumer-timeout' | 'recover') => void) | undefined = undefined;

  constructor(
    private readonly connection: ConnectionCore,
    private readonly listener: ChannelListener,
  ) {}

  // ---- what the facade needs of the connection, through its channel -----------------------------

  /** Encodes a publish on this channel for the next flush. Throws EncodeError for invalid arguments. */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
  ): void {
    this.connection.sendPublish(this.id, exchange, routingKey, body, properties, mandatory);
  }

  /** True when a publish can be written now: open, nothing queued, the socket writable, not blocked. */
  get canPublishNow(): boolean {
    return this.idle && this.connection.publishable;
  }

  /** See {@link ConnectionCore.whenPublishable}. */
  whenPublishable(callback: (error?: Error) => void): (() => void) | undefined {
    return this.connection.whenPublishable(callback);
  }

  /**
   * True when `error` is the loss of a connection that recovery replaces (see ConnectionCore), or
   * the consumer timeout that closed this channel when a fresh channel replaces it (`replaced`): what
   * was opened on it then completes rather than errors.
   */
  lostToRecovery(error: unknown): boolean {
    return this.connection.lostToRecovery(error) || (this.replaced && isConsumerTimeout(error));
  }

  /**
   * Set when the broker closed this channel for a consumer timeout and a fresh channel replaces it
   * (`Connection.channel()` of a recovering connection): its consumers complete instead of erroring.
   */
  replaced = false;

  /** True when the connection recovers (the `recovery` option): consumer timeouts are recovered too. */
  get recovers(): boolean {
    return this.connection.recovers;
  }

  /**
   * True when the broker lets go of a consumer it cancelled once the client answers with
   * basic.cancel-ok (RabbitMQ 4.3.7 and later): its tag may then be used again at once.
   */
  get releasesCancelledTags(): boolean {
    return this.connection.serverCapability('accept_consumer_cancel_ok');
  }

  /**
   * Asks the broker whether `queue` exists (a passive queue.declare on a short-lived channel of its
   * own, so that a 404 closes that one, not this); `done(false)` too when that cannot be asked (no
   * channel free, the connection ending).
   */
  queueExists(queue: string, done: (exists: boolean) => void): void {
    let answered = false;
    const answer = (exists: boolean): void => {
      if (answered) return;
      answered = true;
      done(exists);
    };
    const probe: ChannelCore = new ChannelCore(this.connection, {
      opened: () => {
        probe.call(
          {
            name: 'queue.declare',
            queue,
            passive: true,
            durable: false,
            exclusive: false,
            autoDelete: false,
            nowait: false,
            arguments: {},
          },
          ['queue.declare-ok'],
          () => {
            answer(true);
            probe.close();
          },
          () => answer(false),
        );
      },
      closed: () => answer(false),
    });
    try {
      probe.open();
    } catch {
      answer(false);
    }
  }

  /** A line for the `debug` option, if set. */
  debug(line: string): void {
    this.connection.debug(line);
  }

  /** The broker broke the protocol on this channel: the connection closes with 503 and `message`. */
  protocolError(message: string): void {
    this.connection.channelProtocolError(this.id, message);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Open with nothing queued: an asynchronous method written now keeps its place behind the others. */
  get idle(): boolean {
    return this.state === 'open' && this.queueHead === this.queue.length;
  }

  /** Why the channel closed (undefined while open or after a client close). */
  get error(): ChannelClosedError | undefined {
    return this.closeError;
  }

  /** Attaches to the connection and sends channel.open. Throws when that is impossible. */
  open(id?: number): void {
    if (!this.connection.isOpen) throw this.connection.channelError();
    this.id = this.connection.attachChannel(this, id);
    this.state = 'opening';
    this.inFlight = {
      method: { name: 'channel.open' },
      replies: ['channel.open-ok'],
      onReply: () => {
        this.state = 'open';
        if (this.closeRequested) {
          this.startClose();
          return;
        }
        this.listener.opened();
        this.pump();
      },
      onError: () => {},
      stack: undefined,
      cancelled: false,
      written: true,
      deferred: false,
    };
    this.connection.sendMethod(this.id, { name: 'channel.open' });
  }

  /**
   * Queues a synchronous method; `onReply` gets the reply (or undefined for `nowait` methods, once
   * the method has been handed to the socket). Errors (closed channel, invalid arguments) go to
   * `onError`. Returns a handle to cancel.
   */
  call(
    method: MethodInit,
    replies: readonly MethodName[],
    onReply: (reply: Reply | undefined) => void,
    onError: (error: Error) => void,
    options?: CallOptions,
  ): RpcHandle {
    if (this.state === 'closed' || this.state === 'closing' || this.closeRequested) {
      onError(this.laterUseError(method.name));
      return NO_HANDLE;
    }
    const rpc: Rpc = {
      method,
      replies,
      onReply,
      onError,
      stack: captureStack(),
      cancelled: false,
      written: false,
      deferred: options?.deferred === true,
    };
    if (this.publishesWaiting > 0) {
      // Publishes made earlier on this channel wait for the socket to drain: the method waits in the
      // same line, so that it does not overtake them (a passive declare counting what was published).
      this.connection.whenWritable(() => {
        if (this.state === 'closed') {
          if (!rpc.cancelled) rpc.onError(this.laterUseError(method.name));
          return;
        }
        this.queue.push(rpc);
        this.pump();
      });
      return handleOf(rpc);
    }
    this.queue.push(rpc);
    this.pump();
    return handleOf(rpc);
  }

  /**
   * Runs `send` (which writes an asynchronous method such as basic.publish) after the synchronous
   * methods queued before it have been sent, so that the wire order is the subscription order. Runs
   * at once when nothing is queued. `onError` hears when the channel closes first.
   */
  ordered(send: () => void, onError: (error: Error) => void): RpcHandle {
    if (this.idle) {
      send();
      return NO_HANDLE;
    }
    if (this.state === 'closed' || this.state === 'closing' || this.closeRequested) {
      onError(this.laterUseError('publish'));
      return NO_HANDLE;
    }
    const rpc: Rpc = {
      method: ORDERED,
      replies: [],
      onReply: () => {},
      onError,
      stack: undefined,
      cancelled: false,
      written: false,
      deferred: false,
      run: send,
    };
    this.queue.push(rpc);
    this.pump();
    return handleOf(rpc);
  }

  /** True when a delivery of this channel from `fromTag` on is still unsettled (see AckTracker). */
  holdsUnsettled(fromTag = 0): boolean {
    return this.acks.hasUnsettled(fromTag);
  }

  /** A delivery (basic.deliver or basic.get-ok) arrived with this tag. */
  delivered(deliveryTag: number, needsAck: boolean): void {
    if (needsAck) this.connection.ackableReceived++;
    this.acks.delivered(deliveryTag, needsAck);
  }

  /**
   * Settles a delivery. Single acks are held until the connection flushes, so that those of one turn
   * go out as one `multiple` ack where that acks the same messages. False when the channel is not open.
   */
  settle(kind: SettleKind, deliveryTag: number, multiple: boolean, requeue: boolean): boolean {
    if (this.state !== 'open') return false;
    this.settlements?.(kind, deliveryTag, multiple, requeue);
    this.acks.settle(kind, deliveryTag, multiple, requeue);
    const held = this.acks.pending;
    if (held === 0 || this.acksQueued) return true;
    const delay = this.connection.options.ackDelay;
    if (delay === 0 || (this.prefetch > 0 && held * 4 >= this.prefetch)) {
      this.acksQueued = true;
      this.connection.beforeFlush(this.flushAcks);
    } else if (!this.ackTimerArmed) {
      this.ackTimerArmed = true;
      this.ackTimer = rearm(this.ackTimer, this.ackTimerFired, delay);
    }
    return true;
  }

  // ---- drain ------------------------------------------------------------------------------------

  /** True while the connection drains: new consumers are refused. */
  get consumersRefused(): boolean {
    return this.connection.draining;
  }

  /** True once a drain refuses new publishes. */
  get publishesRefused(): boolean {
    return this.connection.publishesRefused;
  }

  /**
   * Operations (publishes among them) waiting for their turn on this channel, and the one in flight;
   * not the publishes waiting at the connection (see `ConnectionCore.publishesWaiting`).
   */
  get queued(): number {
    if (this.state === 'closed') return 0;
    return this.queue.length - this.queueHead + (this.inFlight === undefined ? 0 : 1);
  }

  /** Deliveries handed out on this channel that still need a settlement (0 once it is closed). */
  get unsettled(): number {
    return this.state === 'open' ? (this.ackTracker?.unsettled ?? 0) : 0;
  }

  /** True while a drain with `prefetched: 'return'` gives back the deliveries whose handlers have not started. */
  get returning(): boolean {
    return this.connection.returningPrefetched && this.state === 'open';
  }

  /**
   * The broker took back the unsettled deliveries from `fromTag` on (RabbitMQ 4.3's consumer timeout)
   * and ignores their settlements: they are no longer waited for.
   */
  reclaimed(fromTag: number): void {
    this.ackTracker?.forgetFrom(fromTag);
    this.forgotten?.(fromTag, 'consumer-timeout');
  }

  /** Sends the held acks now (a drain, before it waits for publishes and closes). */
  flushHeldAcks(): void {
    if (this.state === 'open') this.ackTracker?.flush();
  }

  private disarmAckTimer(): void {
    if (!this.ackTimerArmed) return;
    this.ackTimerArmed = false;
    // A cleared timer cannot be refreshed: the next hold makes a new one.
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
  }

  /** The smallest prefetch limit decides how many acks may be held before they are sent. */
  private noteQos(prefetch: number): void {
    if (prefetch > 0 && (this.prefetch === 0 || prefetch < this.prefetch)) this.prefetch = prefetch;
  }

  /** Writes a method of this channel, after the acks held so far (so that tx.commit follows them). */
  private write(method: MethodInit): void {
    if (this.ackTracker !== undefined && this.ackTracker.pending > 0) this.ackTracker.flush();
    if (method.name === 'basic.qos') this.noteQos(method.prefetchCount ?? 0);
    else if (method.name === 'confirm.select') this.listener.confirmSelected?.();
    this.connection.sendMethod(this.id, method);
  }

  /** The error for an operation attempted on this channel once it is closed or closing. */
  laterUseError(operation: string): ChannelClosedError {
    if (this.closeError !== undefined) return this.closeError.forLaterUse(operation);
    // The client closed the connection (not this channel): say so, as the operations pending then were told.
    if (this.endedWithConnection !== undefined) return this.endedWithConnection;
    return new ChannelClosedError(
      'CHANNEL_CLOSED',
      `${operation} on channel ${this.id}, which the client closed`,
      {
        channel: this.id,
        initiator: 'client',
        ...(this.closedAt === undefined ? {} : { closedAt: this.closedAt }),
      },
    );
  }

  private closedAt: string | undefined;
  /** The error (CONNECTION_CLOSED) of the connection's end that closed this channel without an error of its own. */
  private endedWithConnection: ChannelClosedError | undefined;

  private pump(): void {
    while (this.state === 'open' && this.inFlight === undefined && this.queueHead < this.queue.length) {
      const head = this.queue[this.queueHead]!;
      if (!head.cancelled && head.deferred) {
        // Its turn has come, but it goes out with the flush: until then it may still be withdrawn.
        if (!this.deferredArmed) {
          this.deferredArmed = true;
          this.connection.beforeFlush(this.writeDeferred);
        }
        return;
      }
      const rpc = this.takeHead();
      if (rpc.cancelled) continue;
      rpc.written = true;
      if (rpc.run !== undefined) {
        rpc.run();
        continue;
      }
      try {
        this.write(rpc.method);
      } catch (e) {
        rpc.onError(e as Error);
        continue;
      }
      if (rpc.replies.length === 0) {
        this.connection.afterFlush((error) => {
          if (rpc.cancelled) return;
          if (error !== undefined) rpc.onError(this.closeError ?? this.connectionClosed(error));
          else rpc.onReply(undefined);
        });
        continue;
      }
      this.inFlight = rpc;
    }
  }

  // ---- from the connection ----------------------------------------------------------------------

  handleMethod(method: Method): void {
    switch (method.name) {
      case 'channel.close':
        this.onServerClose(method);
        return;
      case 'channel.close-ok':
        if (this.state === 'closing') this.finish(undefined);
        return;
      default:
        break;
    }
    if (this.state === 'closing' || this.state === 'closed') return; // dropped after our close
    switch (method.name) {
      case 'channel.flow':
        this.write({ name: 'channel.flow-ok', active: method.active });
        return;
      case 'basic.ack':
      case 'basic.nack':
        this.listener.confirmed?.(method);
        return;
      case 'basic.cancel':
        // RabbitMQ 4.3.7 and later (capability accept_consumer_cancel_ok) let go of a consumer it
        // cancelled (a consumer timeout) as soon as the client answers, even a nowait cancel; older
        // brokers take no cancel-ok from a client, so it is sent to them only when asked for.
        if (!method.nowait || this.connection.serverCapability('accept_consumer_cancel_ok')) {
          this.write({ name: 'basic.cancel-ok', consumerTag: method.consumerTag });
        }
        this.listener.consumerCancelled?.(method.consumerTag);
        return;
      default:
        this.reply(method);
    }
  }

  handleContent(
    method: ContentMethod,
    properties: BasicProperties,
    body: Uint8Array,
    headersError: HeadersDecodeError | undefined,
  ): void {
    if (this.state !== 'open') return;
    switch (method.name) {
      case 'basic.deliver':
        this.listener.delivered?.(method, properties, body, headersError);
        return;
      case 'basic.return':
        this.listener.returned?.(method, properties, body, headersError);
        return;
      case 'basic.get-ok':
        this.reply({ name: 'basic.get-ok', method, properties, body, headersError });
        return;
      default:
        this.unexpected(method.name);
    }
  }

  handleConnectionClosed(error: ConnectionClosedError): void {
    if (this.state === 'closed') return;
    // A client close sends the held acks ahead of its connection.close.
    if (error.initiator === 'client' && this.state === 'open') this.ackTracker?.flush();
    const channelError = this.connectionClosed(error);
    // The client closing its connection ends its channels in order (they complete), and so does the
    // loss of a recovering connection (its replacement re-opens them); pending operations still fail,
    // since they will never be answered.
    const recovering = this.connection.recovering;
    if (recovering) this.closeError = channelError;
    this.closeWith(error.initiator === 'client' || recovering ? undefined : channelError, channelError);
  }

  private connectionClosed(error: ConnectionClosedError): ChannelClosedError {
    return new ChannelClosedError(
      'CONNECTION_CLOSED',
      `channel ${this.id} closed with its connection: ${error.message}`,
      {
        channel: this.id,
        initiator: error.initiator,
        cause: error,
        ...(error.replyCode === undefined
          ? {}
          : {
              reason: {
                replyCode: error.replyCode,
                replyText: error.replyText ?? '',
                classId: error.classId ?? 0,
                methodId: error.methodId ?? 0,
              },
            }),
      },
    );
  }

  private reply(reply: Reply): void {
    const rpc = this.inFlight;
    if (rpc === undefined || !rpc.replies.includes(reply.name)) {
      this.unexpected(reply.name);
      return;
    }
    this.inFlight = undefined;
    // Redelivered messages get new tags: the outstanding ones are no longer valid.
    if (reply.name === 'basic.recover-ok') {
      this.acks.forgetAll();
      this.forgotten?.(0, 'recover');
    }
    if (!rpc.cancelled) rpc.onReply(reply);
    this.pump();
  }

  /** A method the channel did not ask for: a protocol violation that ends the connection. */
  private unexpected(name: string): void {
    this.connection.channelProtocolError(this.id, `unexpected ${name} on channel ${this.id}`);
  }

  private onServerClose(close: CloseReason): void {
    try {
      this.connection.sendMethod(this.id, { name: 'channel.close-ok' });
    } catch {
      // the connection is going away; nothing more to tell the broker
    }
    if (this.state === 'closing') {
      // Both sides closed at once: our close-ok answers theirs; theirs answers ours.
      this.finish(undefined);
      return;
    }
    // The operation in flight is the one the broker objected to: point at where it was started.
    const error = ChannelClosedError.fromServer(this.id, close, userFrames(this.inFlight?.stack));
    this.closeWith(error, error);
  }

  // ---- closing --------------------------------------------------------------------------------

  /** Client close: the channel.close handshake; `done` once closed. Idempotent. */
  close(done?: () => void): void {
    if (done !== undefined) {
      if (this.state === 'closed') {
        done();
        return;
      }
      this.closeWaiters ??= [];
      this.closeWaiters.push(done);
    }
    if (this.closeRequested || this.state === 'closed') return;
    this.closeRequested = true;
    this.closedAt = userFrames(captureStack());
    if (this.state === 'new') {
      this.finish(undefined);
      return;
    }
    if (this.state === 'open') this.startClose();
    // While opening, the close starts when channel.open-ok arrives.
  }

  private startClose(): void {
    this.state = 'closing';
    const error = this.laterUseError('the operation');
    this.failPending(error);
    try {
      this.write({
        name: 'channel.close',
        replyCode: ReplyCode.REPLY_SUCCESS,
        replyText: 'closed by the client',
        classId: 0,
        methodId: 0,
      });
    } catch {
      this.finish(undefined);
    }
  }

  /** The first waiting operation, taken off the queue (which must not be empty). */
  private takeHead(): Rpc {
    const queue = this.queue;
    const rpc = queue[this.queueHead]!;
    queue[this.queueHead] = undefined as never;
    this.queueHead++;
    if (this.queueHead === queue.length) {
      queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead >= 1024 && this.queueHead * 2 >= queue.length) {
      this.queue = queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return rpc;
  }

  private takePending(): Rpc[] {
    const waiting = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    const pending = this.inFlight === undefined ? waiting : [this.inFlight, ...waiting];
    this.inFlight = undefined;
    return pending;
  }

  private failPending(error: ChannelClosedError): void {
    for (const rpc of this.takePending()) if (!rpc.cancelled) rpc.onError(error);
  }

  /**
   * The channel is gone (the broker closed it, or its connection ended). The state is `closed` before
   * anyone hears of it, so that a subscriber tearing down in response (catchError, retry) does not
   * send a channel.close for a channel the broker already considers closed.
   */
  private closeWith(error: ChannelClosedError | undefined, pendingError: ChannelClosedError): void {
    if (this.state === 'closed') return;
    if (error !== undefined) this.closeError = error;
    else this.endedWithConnection = pendingError;
    const pending = this.takePending();
    this.finish(error);
    for (const rpc of pending) if (!rpc.cancelled) rpc.onError(pendingError);
  }

  private finish(error: ChannelClosedError | undefined): void {
    if (this.state === 'closed') return;
    const wasOpened = this.state !== 'new';
    this.state = 'closed';
    this.disarmAckTimer();
    if (error !== undefined) this.closeError = error;
    this.failPending(this.laterUseError('the operation'));
    if (wasOpened) this.connection.detachChannel(this.id, this);
    this.listener.closed(error);
    const waiters = this.closeWaiters;
    this.closeWaiters = undefined;
    if (waiters !== undefined) for (const cb of waiters) cb();
  }
}

/** Frames of rxamqp itself and of RxJS, left out of `closedAt` so that the user's code shows. */
const INTERNAL_FRAME =
  /[/\\](node_modules[/\\]rxjs|src[/\\](client|core)|dist[/\\](esm|cjs)[/\\]src)[/\\.]|\(node:|^\s+at node:/;

/** The frames of a call site, recorded now and formatted only if an error needs them. */
interface CapturedStack {
  stack?: string;
}

/** V8's stack API (Node, Chrome); other engines lack it and record no stack here. */
const V8Error = Error as unknown as {
  stackTraceLimit?: number | undefined;
  captureStackTrace?: (target: object, ctor: unknown) => void;
};

function captureStack(): CapturedStack {
  const holder: CapturedStack = {};
  if (V8Error.captureStackTrace === undefined) return holder;
  const limit = V8Error.stackTraceLimit;
  V8Error.stackTraceLimit = 40;
  V8Error.captureStackTrace(holder, captureStack); // V8 formats `stack` lazily, on first read
  V8Error.stackTraceLimit = limit;
  return holder;
}

/** The user's frames of a captured stack (rxamqp's and RxJS's own left out), at most 10. */
function userFrames(captured: CapturedStack | undefined): string | undefined {
  if (captured === undefined) return undefined;
  const frames = captured.stack?.split('\n').slice(1) ?? [];
  const user = frames.filter((f) => !INTERNAL_FRAME.test(f));
  return (user.length > 0 ? user : frames).slice(0, 10).join('\n');
}

/** The frame of a settlement. */
function settlement(kind: SettleKind, deliveryTag: number, multiple: boolean, requeue: boolean): MethodInit {
  switch (kind) {
    case 'ack':
      return { name: 'basic.ack', deliveryTag, multiple };
    case 'nack':
      return { name: 'basic.nack', deliveryTag, multiple, requeue };
    default:
      return { name: 'basic.reject', deliveryTag, requeue };
  }
}
