/**
 * What the mq facade needs of a backend (AMQP through rxamqp, MQTT through mqtt.js). Not exported
 * from `rxamqp/mq`: the backends are chosen by URL.
 *
 * @module
 */
import { Observable } from 'rxjs';
import type { MqBackendKind, MqMessage, MqStatus } from './types.js';

/** A queue with its options resolved (defaults applied, validated). */
export interface ResolvedQueue {
  readonly name: string;
  readonly role: 'sender' | 'receiver';
  readonly pattern: 'unicast' | 'broadcast';
  readonly reliable: boolean;
  /** AMQP: the consumer's prefetch. */
  readonly prefetch: number;
  /** AMQP: delivery mode 2. */
  readonly persistent: boolean;
  /** MQTT: the QoS of sends and subscriptions. */
  readonly qos: 0 | 1;
  /** MQTT: the shared-subscription group of unicast receivers. */
  readonly group: string;
}

/** A backend: one broker connection, its queues' send and receive paths. */
export interface MqBackend {
  readonly kind: MqBackendKind;
  /** The current status at once, then every change; completes after `closed`. */
  readonly status$: Observable<MqStatus>;
  /** Connection errors, as they happen (a failed attempt, a loss); hot. */
  readonly errors$: Observable<Error>;
  /**
   * Sends one message of a sender queue when subscribed: completes once the broker took it (reliable)
   * or once it was handed to the connection (best effort); errors with an `MqError` (`MQ_SEND_FAILED`,
   * `MQ_CLOSED`) when it was not.
   */
  send(queue: ResolvedQueue, body: Uint8Array, contentType: string | undefined): Observable<void>;
  /**
   * The messages of a receiver queue: subscribing starts the consumer or subscription (declaring what
   * the mapping needs), unsubscribing stops it; after a reconnect it starts again by itself. Cold:
   * the facade shares it.
   */
  receive(queue: ResolvedQueue): Observable<MqMessage>;
  /** Closes the connection when subscribed: emits once closed, then completes. */
  close(): Observable<void>;
  /**
   * Optional fast path of `send`: the send path of one sender queue, made once, whose sends report
   * by callback (no Observable per message). `sendEach` and `MqQueue.send` use it when present.
   */
  sender?(queue: ResolvedQueue): MqSendPath;
}

/** A sender queue's send path, as a backend's `sender` makes it. */
export interface MqSendPath {
  /** Sends one message; `done` is called once, with an `MqError` when it was not taken. */
  send(body: Uint8Array, contentType: string | undefined, done: (error: Error | undefined) => void): void;
}

/** One send of a send path as an Observable: emits once the message was taken, then completes. */
export function sendObservable(
  path: MqSendPath,
  body: Uint8Array,
  contentType: string | undefined,
): Observable<void> {
  return new Observable<void>((subscriber) => {
    path.send(body, contentType, (error) => {
      if (error !== undefined) subscriber.error(error);
      else {
        subscriber.next();
        subscriber.complete();
      }
    });
  });
}
