/**
 * @internal The MQTT backend of `rxamqp/mq`: one mqtt.js client (MQTT 5) per mq connection, with
 * rxamqp's retry policies in place of mqtt.js's fixed reconnect period, and PUBACKs sent when the
 * application settles a message rather than when mqtt.js receives it.
 *
 * mqtt.js is an optional peer dependency: it is loaded here with a dynamic `import('mqtt')` when the
 * first MQTT backend is created, never by importing `rxamqp` or `rxamqp/mq`.
 *
 * ## The connection
 *
 * - MQTT 5, `clean: false` with a session expiry interval (`mqtt.sessionExpiry`, default 3600 s): a
 *   persistent session, so that QoS 1 messages sent to a reliable receiver's subscription while its
 *   connection is down are kept by the broker and delivered after the reconnect, and so that messages
 *   delivered but not acknowledged are delivered again (DUP) when the session resumes.
 * - Client id: `mqtt.clientId`, or `${name ?? 'rxamqp-mq'}-<16 random hex digits>`, stable for the
 *   backend's life. With a generated id the session cannot be found again after `close()`, so `close()`
 *   ends it (DISCONNECT with session expiry 0: its subscriptions go at once instead of collecting
 *   messages for an hour). With a given id `close()` keeps it for `sessionExpiry` seconds, to be resumed
 *   by the next process with that id.
 * - Reconnection: mqtt.js's `reconnectPeriod` is 0 (off); after a loss (or a failed attempt) the
 *   backend waits `policy.delayFor(attempt, error)` ms (on `recovery.scheduler` when given) and calls
 *   `client.reconnect()` on the same client, keeping its message stores. Before the first CONNACK the
 *   `initial` policy counts (default: 100 ms doubling up to 5 s, 5 attempts; `initial: false`: none),
 *   after it the `reconnect` policy (default: 100 ms doubling up to 30 s, jitter 0.5, no limit); the
 *   attempt count starts again after each CONNACK. `recovery: false`: the first loss ends the backend.
 *   A refused CONNACK for bad credentials, `Not authorized`, `Banned` or a bad authentication method is
 *   not retried by the default policies (it reaches the policy as an `AuthenticationError` cause).
 * - `status$`: `connecting` (the start and each attempt), `connected` (CONNACK), `disconnected` (lost
 *   or failed; another attempt follows), `closing` (`close()`), `closed` (then it completes).
 *   `errors$`: each mqtt.js `error`, and each loss that no error explained, as
 *   `MqError('MQ_CONNECTION')` with mqtt.js's error as `cause`; it completes at `closed`. Messages never
 *   hold the URL or the password.
 *
 * ## Sending
 *
 * `send` publishes to the topic `queue.name` at `queue.qos`, with MQTT 5's content type when given,
 * when subscribed. QoS 1: completes on the PUBACK; errors with `MQ_SEND_FAILED` when the broker
 * answered with an error reason code or the connection ended first. A QoS 1 message sent while the
 * connection is down is kept by mqtt.js (its outgoing store, which `reconnect()` keeps here) and sent
 * after the reconnect; so is one in flight when the connection was lost (sent again, DUP). QoS 0:
 * completes once mqtt.js wrote it; while down, mqtt.js queues it and writes it after the reconnect.
 * Unsubscribing before completion does not take back the message: it is sent all the same (once
 * mqtt.js is loaded, when it was not yet), only its outcome is no longer reported. After `close()` (or after the retries ran out) a send errors with `MQ_CLOSED`; a send
 * still waiting when the backend closes errors with `MQ_SEND_FAILED` (cause `MQ_CLOSED`).
 *
 * ## Receiving
 *
 * `receive` subscribes `$share/<group>/<name>` (unicast) or `<name>` (broadcast) at `queue.qos` on the
 * first local subscriber of that filter and unsubscribes it after the last one (a reference count per
 * filter). Local subscribers of one unicast filter take its messages in turn (round robin); each of a
 * broadcast filter gets each message. Each filter carries an MQTT 5 subscription identifier (when the
 * broker supports them), so that a message is routed to the filter it was sent for even when one
 * topic is subscribed both ways. After a reconnect the filters are subscribed again when the broker did
 * not keep the session (CONNACK `sessionPresent: false`), and the receivers go on.
 *
 * QoS 1 messages are acknowledged by the application. Not with mqtt.js's `customHandleAcks`: mqtt.js
 * handles incoming packets one at a time and takes the next only once that callback was called, so
 * holding it until the application settles would stall the connection (no other message, PUBACK or
 * PINGRESP read meanwhile; verified with mqtt 5.16). Instead the `handleMessage` hook answers QoS 1
 * packets with an error, which makes mqtt.js skip its PUBACK and go on at once, and the backend sends
 * the PUBACK itself when the message is settled, through mqtt.js's internal `_sendPacket` (there is
 * no public way to send one later), only on the network connection the message came on. A message
 * acknowledged while it is delivered (a synchronous handler) is the exception: the hook lets mqtt.js
 * send that PUBACK as it does without the backend, at no extra cost.
 * - `ack()` (and `markSettled()`, since MQTT has no `multiple` acknowledgement to be covered by):
 *   PUBACK, reason 0.
 * - `nack({ requeue: false })` / `reject({ requeue: false })`: PUBACK with reason 0x80 (unspecified
 *   error): the broker drops the message. MQTT has no dead-lettering.
 * - `nack()` / `reject()` with `requeue` (the default): no PUBACK at all. The message stays
 *   unacknowledged in the session and the broker sends it again (DUP) when the session resumes after
 *   a reconnect, not at once; until then it holds one of the broker's in-flight slots for this client
 *   (Mosquitto's `max_inflight_messages`, 20 by default, bounds the unacknowledged messages a client
 *   gets: MQTT's prefetch).
 * - A message delivered to several local broadcast subscribers is answered once all of them settled
 *   it: no PUBACK if any requeued it, else 0x80 if any rejected it, else 0.
 * - When the connection drops before a message was settled, its settlement is lost (`watchSettlement`
 *   watchers are told, `ack()` returns false) and the broker sends it again on the resumed session.
 * - A QoS 1 message for a filter that has no local subscriber any more (it arrived while its last
 *   subscriber left) is answered with 0x80 (dropped): MQTT cannot give a message back.
 * QoS 0 messages (and QoS 1 messages for a best-effort subscriber sharing a filter with a reliable
 * one, which are acknowledged for it at once) come settled: `ack()` returns false.
 *
 * `fields`: `deliveryTag` is the MQTT packet id (0 at QoS 0), `redelivered` the DUP flag, `exchange`
 * `''`, `routingKey` the topic.
 *
 * @module
 */
import type { IClientOptions, IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import {
  asyncScheduler,
  BehaviorSubject,
  defer,
  Observable,
  of,
  type SchedulerLike,
  Subject,
  type Subscriber,
  type Subscription,
} from 'rxjs';
import type { SettlementWatcher } from '../client/interfaces.js';
import { DEFAULT_INITIAL_RETRY, DEFAULT_RECONNECT_RETRY } from '../config/resolve-options.js';
import { AuthenticationError, ConfigurationError, MqError } from '../errors.js';
import { utf8Decode } from '../protocol/bytes.js';
import { type RetryPolicy, retryPolicy } from '../recovery/retry-policy.js';
import { messageOf } from '../util/runtime.js';
import { type MqBackend, type MqSendPath, type ResolvedQueue, sendObservable } from './backend.js';
import type { MqConnectOptions, MqMessage, MqStatus } from './types.js';

/** What the handleMessage hook answers a QoS 1 packet with, so that mqtt.js sends no PUBACK: one for all. */
const ACKNOWLEDGED_BY_THE_APPLICATION = new Error('acknowledged by the application');
const DEFAULT_KEEPALIVE = 30;
const DEFAULT_CONNECT_TIMEOUT = 10_000;
const DEFAULT_SESSION_EXPIRY = 3600;
/** PUBACK reason code 0x80, "Unspecified error": the message is not processed, the broker drops it. */
const PUBACK_UNSPECIFIED_ERROR = 0x80;
/** CONNACK reason codes retrying cannot fix: credentials and permissions, then configuration. */
const CONNACK_AUTH_CODES: ReadonlySet<number> = new Set([0x86, 0x87, 0x8a, 0x8c, 4, 5]);
const CONNACK_CONFIG_CODES: ReadonlySet<number> = new Set([0x84, 0x85, 1, 2]);
/** The largest MQTT 5 subscription identifier. */
const MAX_SUBSCRIPTION_ID = 268_435_455;

type MqttModule = typeof import('mqtt');

/** The mqtt.js internals the backend uses: there is no public way to send a PUBACK later. */
interface MqttInternals {
  _sendPacket?: (
    packet: { cmd: 'puback'; messageId: number; reasonCode: number },
    cb?: (e?: Error) => void,
  ) => void;
  connackPacket?: { properties?: { subscriptionIdentifiersAvailable?: boolean } };
}

/** What the backend does with a settled QoS 1 packet: PUBACK with a reason code, or nothing. */
type Outcome = number | 'requeue';

/** An item of a {@link Chain}: the chain's links live in the item, so adding and removing allocate nothing. */
class Linked {
  /** @internal */ chainPrev: Linked | undefined;
  /** @internal */ chainNext: Linked | undefined;
  /** @internal */ chained = false;
}

/** A set of items in the order they were added, without the hashing and resizing of a `Set`. */
class Chain<T extends Linked> {
  private head: Linked | undefined;
  private tail: Linked | undefined;

  add(item: T): void {
    if (item.chained) return;
    item.chained = true;
    item.chainPrev = this.tail;
    item.chainNext = undefined;
    if (this.tail === undefined) this.head = item;
    else this.tail.chainNext = item;
    this.tail = item;
  }

  /** Removes `item`: false when it was not in the chain. */
  delete(item: T): boolean {
    if (!item.chained) return false;
    item.chained = false;
    const { chainPrev: prev, chainNext: next } = item;
    if (prev === undefined) this.head = next;
    else prev.chainNext = next;
    if (next === undefined) this.tail = prev;
    else next.chainPrev = prev;
    item.chainPrev = undefined;
    item.chainNext = undefined;
    return true;
  }

  /** Empties the chain and returns what it held, in order. */
  drain(): T[] {
    const items: T[] = [];
    for (let at = this.head; at !== undefined; ) {
      const next = at.chainNext;
      at.chained = false;
      at.chainPrev = undefined;
      at.chainNext = undefined;
      items.push(at as T);
      at = next;
    }
    this.head = undefined;
    this.tail = undefined;
    return items;
  }
}

/** One QoS 1 packet received on the current network connection, perhaps delivered to several subscribers. */
class InboundPacket extends Linked {
  lost = false;
  private outcome: Outcome = 0;
  private remaining = 0;
  /** The copies delivered: the first, then the others (a broadcast filter, or several filters). */
  private first: MqttMessage | undefined;
  private others: MqttMessage[] | undefined;

  constructor(
    readonly messageId: number,
    readonly generation: number,
    private readonly answer: (packet: InboundPacket, reasonCode: number | undefined) => boolean,
  ) {
    super();
  }

  /** How many copies were delivered for the application to settle. */
  get copies(): number {
    return this.first === undefined ? 0 : 1 + (this.others?.length ?? 0);
  }

  add(copy: MqttMessage): void {
    if (this.first === undefined) this.first = copy;
    else if (this.others === undefined) this.others = [copy];
    else this.others.push(copy);
    this.remaining++;
  }

  /** One copy settled: answers the broker once all are. False when the settlement is lost. */
  settleOne(outcome: Outcome): boolean {
    if (this.lost) return false;
    if (outcome === 'requeue' || this.outcome === 'requeue') this.outcome = 'requeue';
    else if (outcome !== 0) this.outcome = outcome;
    this.remaining--;
    if (this.remaining > 0) return true;
    return this.answer(this, this.outcome === 'requeue' ? undefined : this.outcome);
  }

  /** The connection dropped: nothing can be settled any more; tells the unsettled copies' watchers. */
  lose(): void {
    if (this.lost) return;
    this.lost = true;
    this.first?.lose();
    if (this.others !== undefined) for (const copy of this.others) copy.lose();
  }
}

/** The AMQP-shaped `fields` of a received MQTT message. */
interface MqttFields {
  readonly deliveryTag: number;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
}

/** The properties of a message without a content type: one for all. */
const NO_PROPERTIES: { readonly contentType?: string } = Object.freeze({});

/** A received MQTT message, settled once (see the module documentation for what each settlement sends). */
class MqttMessage implements MqMessage {
  private isSettled: boolean;
  private watchers: Set<SettlementWatcher> | undefined;
  private madeFields: MqttFields | undefined;

  constructor(
    readonly body: Uint8Array,
    readonly properties: { readonly contentType?: string },
    private readonly topic: string,
    private readonly publish: IPublishPacket,
    private readonly packet: InboundPacket | undefined,
  ) {
    this.isSettled = packet === undefined;
  }

  /** `deliveryTag`: the packet id (0 at QoS 0); `redelivered`: DUP; `exchange` `''`; `routingKey`: the topic. */
  get fields(): MqttFields {
    this.madeFields ??= {
      deliveryTag: this.publish.messageId ?? 0,
      redelivered: this.publish.dup === true,
      exchange: '',
      routingKey: this.topic,
    };
    return this.madeFields;
  }

  get settled(): boolean {
    return this.isSettled;
  }

  text(): string {
    return utf8Decode(this.body);
  }

  json<T = unknown>(): T {
    return JSON.parse(utf8Decode(this.body)) as T;
  }

  /** PUBACK (reason 0) once every local subscriber it went to settled it. MQTT has no `multiple`. */
  ack(_options?: { multiple?: boolean }): boolean {
    return this.settle(0);
  }

  /** With `requeue` (default): no PUBACK, sent again when the session resumes; without: PUBACK 0x80. */
  nack(options?: { requeue?: boolean; multiple?: boolean }): boolean {
    return this.settle((options?.requeue ?? true) ? 'requeue' : PUBACK_UNSPECIFIED_ERROR);
  }

  /** As `nack`: MQTT does not tell a reject from a nack. */
  reject(options?: { requeue?: boolean }): boolean {
    return this.settle((options?.requeue ?? true) ? 'requeue' : PUBACK_UNSPECIFIED_ERROR);
  }

  /**
   * Marks it settled and counts it as acknowledged (PUBACK): what covers a message in AMQP, a
   * `multiple` acknowledgement, does not exist in MQTT, so a message marked settled (by `batchAck`,
   * say) must be acknowledged on its own.
   */
  markSettled(): boolean {
    if (this.isSettled) return false;
    this.settle(0);
    return true;
  }

  watchSettlement(watcher: SettlementWatcher): boolean {
    if (this.packet === undefined) return true;
    if (this.packet.lost) return false;
    if (this.isSettled) return true;
    this.watchers ??= new Set();
    this.watchers.add(watcher);
    return true;
  }

  unwatchSettlement(watcher: SettlementWatcher): void {
    this.watchers?.delete(watcher);
  }

  /** Never the body: fields, properties, the body's size, whether it is settled. */
  toJSON(): { fields: MqttFields; properties: unknown; bodySize: number; settled: boolean } {
    return {
      fields: this.fields,
      properties: this.properties,
      bodySize: this.body.length,
      settled: this.isSettled,
    };
  }

  /** @internal Its connection dropped before it was settled. */
  lose(): void {
    const watchers = this.watchers;
    this.watchers = undefined;
    if (this.isSettled || watchers === undefined) return;
    for (const w of watchers) {
      try {
        w.settlementLost();
      } catch {
        // A watcher's failure must not stop the others, nor escape into mqtt.js's event handler.
      }
    }
  }

  private settle(outcome: Outcome): boolean {
    if (this.isSettled || this.packet === undefined) return false;
    this.isSettled = true;
    this.watchers = undefined;
    return this.packet.settleOne(outcome);
  }
}

/** A local subscriber of a filter. */
interface Receiver {
  readonly subscriber: Subscriber<MqMessage>;
  /** The QoS its queue asked for: a QoS 0 receiver gets QoS 1 messages acknowledged at once. */
  readonly qos: 0 | 1;
}

/** A subscription filter of the connection and its local subscribers. */
interface Filter {
  readonly filter: string;
  /** The topic: the queue's name. */
  readonly topic: string;
  readonly pattern: 'unicast' | 'broadcast';
  readonly id: number;
  readonly receivers: Receiver[];
  /** Round robin position (unicast). */
  next: number;
  /** The QoS the broker granted (or was asked) in the current session. */
  qos: 0 | 1;
  /** True while the broker's session holds it (after a SUBACK; false when the session was not present). */
  inSession: boolean;
  /** A SUBSCRIBE or UNSUBSCRIBE is under way. */
  pending: boolean;
}

/** The filters by name, and as an array for the message path (a Map's iterator allocates). */
class Filters extends Map<string, Filter> {
  private list: Filter[] | undefined;

  /** Every filter, in the order they were added. */
  get all(): readonly Filter[] {
    this.list ??= [...this.values()];
    return this.list;
  }

  override set(key: string, value: Filter): this {
    this.list = undefined;
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    this.list = undefined;
    return super.delete(key);
  }

  override clear(): void {
    this.list = undefined;
    super.clear();
  }
}

/** A send waiting for mqtt.js's callback: in `pending` until it is answered, failed or the backend closes. */
class PendingSend extends Linked {
  private over = false;

  constructor(
    private readonly pending: Chain<PendingSend>,
    private readonly done: (error: Error | undefined) => void,
  ) {
    super();
    pending.add(this);
  }

  /** mqtt.js answered: reports `error` (or success) unless the send was failed already. */
  finish(error: Error | undefined): void {
    if (this.over) return;
    this.over = true;
    this.pending.delete(this);
    this.done(error);
  }

  /** Fails it (the backend closed, or it could not be handed to mqtt.js). */
  fail(error: Error): void {
    this.finish(error);
  }
}

/** `body` as a Buffer for mqtt.js (the same memory), where there is a Buffer. */
function asBuffer(body: Uint8Array): Buffer {
  return (
    typeof Buffer === 'undefined' || Buffer.isBuffer(body)
      ? body
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  ) as Buffer;
}

/** 16 random hex digits. */
function randomHex(): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The password in `url`'s user information, if any. */
function urlPassword(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password === '' ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}

/** The reason code of an mqtt.js `ErrorWithReasonCode`, if `error` is one. */
function reasonCodeOf(error: unknown): number | undefined {
  const code: unknown =
    typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Creates the MQTT backend of an mq connection to `url` (`mqtt://`, `mqtts://`, `ws://`, `wss://`,
 * passed to mqtt.js as it is). Synchronous: mqtt.js is loaded (`load`: a dynamic import) and the
 * connection opened in the background (at once when `load` gives the module itself, as tests do).
 * When the `mqtt` package is missing, the backend closes at once: `errors$` emits
 * `MqError('MQ_BACKEND_MISSING')`, and sends and receivers error with it. Throws a
 * `ConfigurationError` for invalid `recovery` policies. See the module documentation for the semantics.
 *
 * @example
 * ```ts
 * const backend = createMqttBackend('mqtt://localhost:1883', { name: 'worker' });
 * ```
 */
export function createMqttBackend(
  url: string,
  options: MqConnectOptions,
  load: () => MqttModule | PromiseLike<MqttModule> = () => import('mqtt'),
): MqBackend {
  const recovery = options.recovery ?? true;
  const recoveryObject = typeof recovery === 'object' ? recovery : {};
  let initialPolicy: RetryPolicy | undefined;
  let reconnectPolicy: RetryPolicy | undefined;
  if (recovery !== false) {
    try {
      initialPolicy =
        recoveryObject.initial === false
          ? undefined
          : retryPolicy(recoveryObject.initial, DEFAULT_INITIAL_RETRY);
      reconnectPolicy = retryPolicy(recoveryObject.reconnect, DEFAULT_RECONNECT_RETRY);
    } catch (e) {
      throw new ConfigurationError(`mq recovery: ${messageOf(e)}`, { cause: e });
    }
  }
  const scheduler: SchedulerLike = recoveryObject.scheduler ?? asyncScheduler;
  const mqttOptions = options.mqtt ?? {};
  const givenClientId = mqttOptions.clientId;
  const clientId = givenClientId ?? `${options.name ?? 'rxamqp-mq'}-${randomHex()}`;
  const secrets = [mqttOptions.password, mqttOptions.tls?.passphrase, urlPassword(url)].filter(
    (s): s is string => s !== undefined && s !== '',
  );

  /** `text` without any password. */
  const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), text);
  const connectionError = (what: string, cause: unknown): MqError =>
    new MqError('MQ_CONNECTION', redact(`${what}: ${messageOf(cause)}`), { cause });

  const status = new BehaviorSubject<MqStatus>('connecting');
  const errors = new Subject<Error>();
  let client: MqttClient | undefined;
  /** `loading`: mqtt.js not yet imported; `open`: connecting or connected; then closing, closed. */
  let phase: 'loading' | 'open' | 'closing' | 'closed' = 'loading';
  /** Why the backend closed when it was not `close()`: the missing package, the last loss. */
  let endError: MqError | undefined;
  let everConnected = false;
  /** Failed attempts since the last CONNACK. */
  let attempt = 0;
  /** Counts network connections: a packet's settlement belongs to the one it came on. */
  let generation = 0;
  let retryTimer: Subscription | undefined;
  let closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last error mqtt.js reported since the last connect or loss: the loss's cause. */
  let lastError: unknown;
  let nextFilterId = 1;
  const filters = new Filters();
  const pendingSends = new Chain<PendingSend>();
  /** QoS 1 packets received on the current network connection and not yet answered. */
  const inbound = new Chain<InboundPacket>();
  /** The QoS 1 packet whose copies are being delivered (in mqtt.js's `message` event), and its PUBLISH. */
  let receiving: InboundPacket | undefined;
  let receivingPublish: IPublishPacket | undefined;
  /** The PUBLISH acknowledged (reason 0) while it was delivered: mqtt.js's `handleMessage` answers it. */
  let ackInline: IPublishPacket | undefined;
  /** Called once the backend is closed (for `close()` subscribers). */
  const closedListeners = new Set<() => void>();
  /** Sends made before mqtt.js was loaded: run once it is (or the backend closed). */
  const whenStarted = new Set<() => void>();
  const flushWhenStarted = (): void => {
    const waiting = [...whenStarted];
    whenStarted.clear();
    for (const f of waiting) guard(f);
  };

  const setStatus = (s: MqStatus): void => {
    if (status.value !== s && !status.closed) status.next(s);
  };
  const emitError = (e: Error): void => {
    if (!errors.closed) errors.next(e);
  };

  /** Ends everything: status `closed`, receivers complete (or error with `error`), sends fail. */
  const finishClosed = (error: MqError | undefined): void => {
    if (phase === 'closed') return;
    phase = 'closed';
    retryTimer?.unsubscribe();
    retryTimer = undefined;
    if (closeTimer !== undefined) clearTimeout(closeTimer);
    closeTimer = undefined;
    if (error !== undefined) endError = error;
    for (const p of inbound.drain()) p.lose();
    // Sends not yet handed to mqtt.js (made while it loaded) fail with MQ_CLOSED (or the missing package).
    flushWhenStarted();
    const closed = new MqError('MQ_CLOSED', 'the mq connection closed before the broker took the message', {
      cause: error,
    });
    for (const send of pendingSends.drain()) {
      send.fail(
        error?.code === 'MQ_BACKEND_MISSING'
          ? error
          : new MqError('MQ_SEND_FAILED', 'the mq connection closed before the broker took the message', {
              cause: error ?? closed,
            }),
      );
    }
    const receivers = [...filters.values()].flatMap((f) => f.receivers);
    filters.clear();
    for (const r of receivers) {
      if (error === undefined) r.subscriber.complete();
      else r.subscriber.error(error);
    }
    setStatus('closed');
    status.complete();
    errors.complete();
    for (const listener of [...closedListeners]) listener();
    closedListeners.clear();
  };

  /** The error of a send or receive on a backend that is closing or closed. */
  const closedError = (): MqError =>
    endError?.code === 'MQ_BACKEND_MISSING'
      ? endError
      : new MqError(
          'MQ_CLOSED',
          'the mq connection is closed',
          endError === undefined ? undefined : { cause: endError },
        );

  /** Sends the PUBACK of a settled packet (reasonCode undefined: none, it is requeued). */
  const answer = (packet: InboundPacket, reasonCode: number | undefined): boolean => {
    inbound.delete(packet);
    if (reasonCode === undefined) return true;
    if (reasonCode === 0 && packet === receiving) {
      // Settled while it is delivered: mqtt.js sends this PUBACK itself, as it would without us.
      ackInline = receivingPublish;
      return true;
    }
    const c = client;
    const internals = c as unknown as MqttInternals | undefined;
    if (
      c === undefined ||
      packet.generation !== generation ||
      !c.connected ||
      typeof internals?._sendPacket !== 'function'
    ) {
      return false;
    }
    try {
      internals._sendPacket({ cmd: 'puback', messageId: packet.messageId, reasonCode });
      return true;
    } catch (e) {
      emitError(connectionError('could not send a PUBACK', e));
      return false;
    }
  };

  const subscriptionIdsAvailable = (): boolean =>
    (client as unknown as MqttInternals | undefined)?.connackPacket?.properties
      ?.subscriptionIdentifiersAvailable !== false;

  /** Brings the broker's subscription of `f` in line with its receivers (connected only). */
  const sync = (f: Filter): void => {
    const c = client;
    if (c === undefined || !c.connected || phase !== 'open' || f.pending) return;
    const wanted = f.receivers.length > 0;
    if (wanted) {
      const qos: 0 | 1 = f.receivers.some((r) => r.qos === 1) ? 1 : 0;
      if (f.inSession && f.qos >= qos) return;
      f.pending = true;
      const gen = generation;
      c.subscribe(
        f.filter,
        subscriptionIdsAvailable() ? { qos, properties: { subscriptionIdentifier: f.id } } : { qos },
        (err, granted) => {
          f.pending = false;
          if (phase !== 'open' || filters.get(f.filter) !== f) return;
          if (gen !== generation) return; // lost meanwhile: the next CONNACK subscribes again
          const grantedQos = granted?.[0]?.qos;
          if (err !== null && err !== undefined) {
            if (!c.connected) return;
            const refused = new MqError(
              'MQ_CONNECTION',
              redact(`the broker refused the subscription to '${f.filter}': ${messageOf(err)}`),
              { cause: err },
            );
            emitError(refused);
            filters.delete(f.filter);
            for (const r of f.receivers.splice(0)) r.subscriber.error(refused);
            return;
          }
          f.inSession = true;
          f.qos = grantedQos === 1 || grantedQos === 2 ? 1 : 0;
          sync(f);
        },
      );
    } else {
      filters.delete(f.filter);
      if (!f.inSession) return;
      f.inSession = false;
      c.unsubscribe(f.filter, () => {
        // Nothing to do: a new receiver of the filter made a new entry and subscribes on its own.
      });
    }
  };

  /** Whether a message with these subscription identifiers (or, without, this topic) is for `f`. */
  const isFor = (f: Filter, ids: number | number[] | undefined, topic: string): boolean =>
    ids === undefined ? f.topic === topic : Array.isArray(ids) ? ids.includes(f.id) : ids === f.id;

  /** The receivers of `f` a message goes to: each (broadcast) or the next in turn (unicast). */
  const receiversOf = (f: Filter): readonly Receiver[] | Receiver => {
    if (f.pattern === 'broadcast') return f.receivers;
    const r = f.receivers[f.next++ % f.receivers.length] as Receiver;
    if (f.next >= f.receivers.length) f.next = 0;
    return r;
  };

  /** Delivers a message from mqtt.js's `message` event to the receivers of the filters it is for. */
  const onMessage = (topic: string, payload: Uint8Array, packet: IPublishPacket): void => {
    const ids = packet.properties?.subscriptionIdentifier;
    const inboundPacket =
      packet.qos > 0 && typeof packet.messageId === 'number'
        ? new InboundPacket(packet.messageId, generation, answer)
        : undefined;
    const contentType = packet.properties?.contentType;
    const properties = contentType === undefined ? NO_PROPERTIES : { contentType };
    // Every copy is made (and counted in the packet) before the first is delivered: a copy settled
    // at once must not answer the broker for the others. Most messages have one copy: no array.
    let firstReceiver: Receiver | undefined;
    let firstMessage: MqttMessage | undefined;
    let more: [Receiver, MqttMessage][] | undefined;
    for (const f of filters.all) {
      if (f.receivers.length === 0 || !isFor(f, ids, topic)) continue;
      const chosen = receiversOf(f);
      const count = Array.isArray(chosen) ? chosen.length : 1;
      for (let i = 0; i < count; i++) {
        const r = Array.isArray(chosen) ? (chosen[i] as Receiver) : (chosen as Receiver);
        const settles = inboundPacket !== undefined && r.qos === 1;
        const message = new MqttMessage(
          payload,
          properties,
          topic,
          packet,
          settles ? inboundPacket : undefined,
        );
        if (settles) inboundPacket.add(message);
        if (firstReceiver === undefined) {
          firstReceiver = r;
          firstMessage = message;
        } else if (more === undefined) more = [[r, message]];
        else more.push([r, message]);
      }
    }
    if (inboundPacket === undefined) {
      if (firstReceiver !== undefined) deliver(firstReceiver, firstMessage as MqttMessage);
      if (more !== undefined) for (const [r, message] of more) deliver(r, message);
      return;
    }
    receiving = inboundPacket;
    receivingPublish = packet;
    try {
      if (inboundPacket.copies === 0) {
        // Nobody takes it here: best-effort receivers only (acknowledged for them), or no receiver any
        // more (dropped: MQTT cannot give it back).
        answer(inboundPacket, firstReceiver !== undefined ? 0 : PUBACK_UNSPECIFIED_ERROR);
      } else {
        inbound.add(inboundPacket);
      }
      if (firstReceiver !== undefined) deliver(firstReceiver, firstMessage as MqttMessage);
      if (more !== undefined) for (const [r, message] of more) deliver(r, message);
    } finally {
      receiving = undefined;
      receivingPublish = undefined;
    }
  };

  const deliver = (r: Receiver, message: MqttMessage): void => {
    try {
      r.subscriber.next(message);
    } catch {
      // RxJS reports a subscriber's own errors; nothing may escape into mqtt.js.
    }
  };

  /** A network connection ended (a loss, a failed attempt, or the end of `close()`). */
  const onClose = (): void => {
    generation++;
    for (const p of inbound.drain()) p.lose();
    for (const f of filters.values()) f.pending = false;
    if (phase === 'closing') {
      finishClosed(undefined);
      return;
    }
    if (phase !== 'open') return;
    const wasConnected = status.value === 'connected';
    let cause: unknown = lastError;
    lastError = undefined;
    if (cause === undefined) {
      cause = new Error(
        wasConnected ? 'the connection to the broker was lost' : 'the connection attempt failed',
      );
      emitError(connectionError('mqtt connection', cause));
    }
    const failure = connectionError(
      wasConnected ? 'the mqtt connection was lost' : 'the mqtt connection attempt failed',
      cause,
    );
    attempt++;
    const policy = everConnected ? reconnectPolicy : initialPolicy;
    let delay: number | undefined;
    try {
      delay = policy?.delayFor(attempt, policyError(cause, failure));
    } catch (e) {
      emitError(connectionError('the retry policy failed', e));
      delay = undefined;
    }
    if (delay === undefined || !(delay >= 0)) {
      giveUp(failure);
      return;
    }
    setStatus('disconnected');
    retryTimer?.unsubscribe();
    retryTimer = scheduler.schedule(() => {
      retryTimer = undefined;
      if (phase !== 'open' || client === undefined) return;
      setStatus('connecting');
      try {
        client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
      } catch (e) {
        emitError(connectionError('mqtt reconnect', e));
        giveUp(connectionError('mqtt reconnect', e));
      }
    }, delay);
  };

  /** What the retry policy judges: auth and configuration refusals in a form it knows as permanent. */
  const policyError = (cause: unknown, failure: MqError): unknown => {
    const code = reasonCodeOf(cause);
    if (code === undefined || !messageOf(cause).startsWith('Connection refused')) return failure;
    if (CONNACK_AUTH_CODES.has(code)) {
      return new MqError('MQ_CONNECTION', failure.message, {
        cause: new AuthenticationError(failure.message, { mechanism: 'MQTT', cause }),
      });
    }
    if (CONNACK_CONFIG_CODES.has(code)) {
      return new MqError('MQ_CONNECTION', failure.message, {
        cause: new ConfigurationError(failure.message, { cause }),
      });
    }
    return failure;
  };

  /** The retries ran out (or recovery is off): the backend ends with `failure`. */
  const giveUp = (failure: MqError): void => {
    const c = client;
    finishClosed(failure);
    try {
      c?.end(true);
    } catch {
      // Ending a client that is already down: nothing more to do.
    }
  };

  const onConnect = (connack: { sessionPresent?: boolean }): void => {
    if (phase !== 'open') return;
    everConnected = true;
    attempt = 0;
    lastError = undefined;
    if (connack.sessionPresent !== true) for (const f of filters.values()) f.inSession = false;
    setStatus('connected');
    for (const f of [...filters.values()]) sync(f);
  };

  const start = (mqtt: MqttModule): void => {
    if (phase !== 'loading') return;
    phase = 'open';
    const connect = mqtt.connect ?? (mqtt as unknown as { default?: MqttModule }).default?.connect;
    const clientOptions: IClientOptions = {
      protocolVersion: 5,
      clientId,
      clean: false,
      keepalive: mqttOptions.keepalive ?? DEFAULT_KEEPALIVE,
      connectTimeout: mqttOptions.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: true,
      properties: { sessionExpiryInterval: mqttOptions.sessionExpiry ?? DEFAULT_SESSION_EXPIRY },
    };
    if (mqttOptions.username !== undefined) clientOptions.username = mqttOptions.username;
    if (mqttOptions.password !== undefined) clientOptions.password = mqttOptions.password;
    const tls = mqttOptions.tls;
    if (tls !== undefined) {
      // mqtt.js hands these to tls.connect (mqtts://) or to the WebSocket (wss://).
      if (tls.ca !== undefined) clientOptions.ca = tls.ca as NonNullable<IClientOptions['ca']>;
      if (tls.cert !== undefined) clientOptions.cert = tls.cert as NonNullable<IClientOptions['cert']>;
      if (tls.key !== undefined) clientOptions.key = tls.key as NonNullable<IClientOptions['key']>;
      // Not in mqtt.js's types, but passed on to tls.connect with the rest.
      if (tls.passphrase !== undefined) {
        (clientOptions as IClientOptions & { passphrase?: string }).passphrase = tls.passphrase;
      }
      if (tls.rejectUnauthorized !== undefined) clientOptions.rejectUnauthorized = tls.rejectUnauthorized;
      if (tls.servername !== undefined) clientOptions.servername = tls.servername;
    }
    let c: MqttClient;
    try {
      c = connect(url, clientOptions);
    } catch (e) {
      const failure = connectionError('could not start the mqtt connection', e);
      emitError(failure);
      finishClosed(failure);
      return;
    }
    client = c;
    // QoS 1: mqtt.js calls this after the `message` event. A packet the application acknowledged
    // during that event gets its PUBACK from mqtt.js (no error here); any other gets none (an error
    // here makes mqtt.js skip it and go on with the next packet), the backend sends it when settled.
    c.handleMessage = (packet, callback) => {
      const inline = ackInline;
      ackInline = undefined;
      if (packet.qos !== 1 || inline === packet) callback();
      else callback(ACKNOWLEDGED_BY_THE_APPLICATION);
    };
    c.on('connect', (connack) => guard(() => onConnect(connack)));
    c.on('message', (topic, payload, packet) => {
      try {
        onMessage(topic, payload, packet);
      } catch (e) {
        emitError(connectionError('internal error of the mqtt backend', e));
      }
    });
    c.on('error', (e) =>
      guard(() => {
        lastError = e;
        emitError(connectionError('mqtt error', e));
      }),
    );
    c.on('disconnect', (packet) =>
      guard(() => {
        const code = packet.reasonCode ?? 0;
        lastError = new Error(
          `the broker sent DISCONNECT (reason ${code}${packet.properties?.reasonString === undefined ? '' : `: ${packet.properties.reasonString}`})`,
        );
      }),
    );
    c.on('close', () => guard(onClose));
    flushWhenStarted();
  };

  /** Nothing may throw out of an mqtt.js event handler. */
  const guard = (f: () => void): void => {
    try {
      f();
    } catch (e) {
      emitError(connectionError('internal error of the mqtt backend', e));
    }
  };

  /** Ends the client gracefully (a DISCONNECT when connected, at once otherwise). */
  const endClient = (c: MqttClient): void => {
    const connected = c.connected;
    const opts = givenClientId === undefined ? { properties: { sessionExpiryInterval: 0 } } : {};
    try {
      c.end(!connected, opts, () => finishClosed(undefined));
    } catch {
      finishClosed(undefined);
      return;
    }
    if (phase === 'closed') return;
    // A graceful end waits for the PUBACKs of QoS 1 messages in flight: not forever.
    closeTimer = setTimeout(() => {
      closeTimer = undefined;
      if (phase === 'closed') return;
      try {
        c.stream?.destroy();
      } catch {
        // Already gone.
      }
      finishClosed(undefined);
    }, mqttOptions.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
  };

  const missing = (cause: unknown): void => {
    if (phase === 'closed') return;
    const error = new MqError('MQ_BACKEND_MISSING', 'the mqtt package is not installed: npm install mqtt', {
      cause,
    });
    emitError(error);
    finishClosed(error);
  };
  let loading: MqttModule | PromiseLike<MqttModule> | undefined;
  try {
    loading = load();
  } catch (cause) {
    missing(cause);
  }
  if (loading !== undefined) {
    if (typeof (loading as PromiseLike<MqttModule>).then === 'function') {
      (loading as PromiseLike<MqttModule>).then((mqtt) => guard(() => start(mqtt)), missing);
    } else {
      guard(() => start(loading as MqttModule));
    }
  }

  /** The send path of a sender queue: its publish options made once, a callback per send. */
  const sender = (queue: ResolvedQueue): MqSendPath => {
    const topic = queue.name;
    const plain: IClientPublishOptions = { qos: queue.qos };
    const refused = (err: unknown): MqError =>
      phase === 'open'
        ? new MqError(
            'MQ_SEND_FAILED',
            redact(`the broker did not take the message sent to '${topic}': ${messageOf(err)}`),
            { cause: err },
          )
        : closedError();
    const publish = (pending: PendingSend, body: Uint8Array, contentType: string | undefined): void => {
      const c = client;
      if (c === undefined || phase !== 'open') {
        pending.fail(closedError());
        return;
      }
      try {
        c.publish(
          topic,
          asBuffer(body),
          contentType === undefined ? plain : { qos: queue.qos, properties: { contentType } },
          (err) => {
            if (err === null || err === undefined) pending.finish(undefined);
            else pending.finish(refused(err));
          },
        );
      } catch (e) {
        pending.fail(
          new MqError('MQ_SEND_FAILED', redact(`could not send to '${topic}': ${messageOf(e)}`), {
            cause: e,
          }),
        );
      }
    };
    return {
      send(body, contentType, done) {
        if (phase === 'closing' || phase === 'closed') {
          done(closedError());
          return;
        }
        const pending = new PendingSend(pendingSends, done);
        if (client === undefined) whenStarted.add(() => publish(pending, body, contentType));
        else publish(pending, body, contentType);
      },
    };
  };

  const receive = (queue: ResolvedQueue): Observable<MqMessage> =>
    new Observable<MqMessage>((subscriber) => {
      if (phase === 'closing' || phase === 'closed') {
        subscriber.error(closedError());
        return;
      }
      const name = queue.pattern === 'unicast' ? `$share/${queue.group}/${queue.name}` : queue.name;
      let f = filters.get(name);
      if (f === undefined) {
        f = {
          filter: name,
          topic: queue.name,
          pattern: queue.pattern,
          id: nextFilterId,
          receivers: [],
          next: 0,
          qos: queue.qos,
          inSession: false,
          pending: false,
        };
        nextFilterId = nextFilterId >= MAX_SUBSCRIPTION_ID ? 1 : nextFilterId + 1;
        filters.set(name, f);
      }
      const entry = f;
      const receiver: Receiver = { subscriber, qos: queue.qos };
      entry.receivers.push(receiver);
      guard(() => sync(entry));
      return () => {
        const i = entry.receivers.indexOf(receiver);
        if (i < 0) return;
        entry.receivers.splice(i, 1);
        if (entry.next > i) entry.next--;
        if (entry.receivers.length === 0 && filters.get(entry.filter) === entry) {
          // Connected: unsubscribed now. Otherwise an entry the session holds stays, without
          // receivers, until the next CONNACK (see onConnect), and the others go at once.
          if (client?.connected === true && phase === 'open') guard(() => sync(entry));
          else if (!entry.inSession) filters.delete(entry.filter);
        }
      };
    });

  const close = (): Observable<void> =>
    new Observable<void>((subscriber) => {
      const done = (): void => {
        subscriber.next();
        subscriber.complete();
      };
      if (phase === 'closed') {
        done();
        return;
      }
      closedListeners.add(done);
      if (phase === 'loading') {
        phase = 'closing';
        setStatus('closing');
        finishClosed(undefined);
      } else if (phase === 'open') {
        phase = 'closing';
        setStatus('closing');
        retryTimer?.unsubscribe();
        retryTimer = undefined;
        if (client === undefined) finishClosed(undefined);
        else endClient(client);
      }
      return () => closedListeners.delete(done);
    });

  return {
    kind: 'mqtt',
    // A subscriber that comes after the end still gets `closed` (a completed BehaviorSubject gives nothing).
    status$: defer(() => (phase === 'closed' ? of<MqStatus>('closed') : status.asObservable())),
    errors$: errors.asObservable(),
    send: (queue, body, contentType) => sendObservable(sender(queue), body, contentType),
    sender,
    receive,
    close,
  };
}
