/**
 * One relayed connection: a browser's WebSocket and the TCP (or TLS) socket the relay opens to the
 * broker for it, with the bytes copied both ways unread, backpressure in both directions, and each way
 * either side can end mapped onto a close of the other.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { connectBroker } from './broker.js';
import { closeLine, type RequestInfo } from './log.js';
import type { ResolvedRelayOptions } from './options.js';

/**
 * How long a close may go without progress before the relay stops waiting and destroys the sockets:
 * the browser's close frame, the broker's FIN, or the bytes still queued for either side, which a peer
 * that is reading drains. A close that keeps making progress gets up to `slowClientTimeoutMs` (when
 * longer), so that a slow browser still gets the broker's last bytes. `ws` alone would wait 30 s for a
 * close frame whatever happens.
 */
export const CLOSE_GRACE_MS = 2000;

/** WebSocket close codes the relay sends (RFC 6455 section 7.4.1 and the IANA registry). */
export const CLOSE_CODES = {
  /** The broker closed the connection after the last byte. */
  normal: 1000,
  /** The relay is shutting down. */
  goingAway: 1001,
  /** A text message: the relay carries binary AMQP frames only. */
  unsupportedData: 1003,
  /** The client read too slowly for too long. */
  policyViolation: 1008,
  /** The broker connection failed after it was up. */
  internalError: 1011,
  /** The broker could not be reached (refused, timed out, TLS handshake failed). */
  badGateway: 1014,
} as const;

/** What ended a connection: logged, and, when the relay ends it, sent to the browser. */
interface Ending {
  /** For the log line. */
  readonly reason: string;
  /** Close the WebSocket with this code and reason; `closed`: it is closing already. */
  readonly websocket: { readonly code: number; readonly reason: string } | 'closed';
  /** `end`: FIN after what is queued; `destroy`: at once. */
  readonly broker: 'end' | 'destroy';
}

function errorCode(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : error.message;
}

/** A message as one Buffer: `ws` hands over a Buffer for binaryType 'nodebuffer' (the default). */
function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Copies bytes between one WebSocket and one broker socket, which it opens at once. Calls `onDone`
 * exactly once, when both the WebSocket and the broker socket are closed, after logging the close.
 *
 * @example
 * ```ts
 * wss.handleUpgrade(request, socket, head, (ws) => {
 *   const connection = new RelayConnection(ws, id, requestInfo(request), options, () => open.delete(connection));
 *   open.add(connection);
 * });
 * ```
 */
export class RelayConnection {
  private readonly broker: Socket;
  private brokerReady = false;
  private brokerClosed = false;
  private websocketClosed = false;
  /** Set by the first end: from then on nothing more is copied. */
  private ending: Ending | undefined;
  private done = false;
  /** Browser bytes that came before the broker socket was ready, in order. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  /** The relay stopped reading from the broker: the browser holds `maxBufferedBytes` or more. */
  private brokerPaused = false;
  /** The relay stopped reading from the browser: the broker socket's buffer is full. */
  private websocketPaused = false;
  private up = 0;
  private down = 0;
  private readonly startedAt = performance.now();
  private connectTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  /** When a close that is still making progress is given up all the same. */
  private closeDeadline = 0;

  constructor(
    private readonly websocket: WebSocket,
    private readonly id: number,
    private readonly info: RequestInfo,
    private readonly options: ResolvedRelayOptions,
    private readonly onDone: () => void,
  ) {
    websocket.on('message', this.onMessage);
    websocket.on('close', this.onWebSocketClose);
    websocket.on('error', this.onWebSocketError);
    const { socket, readyEvent } = connectBroker(options.broker);
    this.broker = socket;
    socket.on('error', this.onBrokerError);
    socket.once(readyEvent, this.onBrokerReady);
    socket.on('data', this.onBrokerData);
    socket.on('end', this.onBrokerEnd);
    socket.once('close', this.onBrokerClose);
    this.connectTimer = setTimeout(this.onConnectTimeout, options.connectTimeoutMs);
  }

  /** Closes the connection because the relay is shutting down (1001). */
  shutDown(): void {
    this.end({
      reason: `relay shutting down (${CLOSE_CODES.goingAway})`,
      websocket: { code: CLOSE_CODES.goingAway, reason: 'relay shutting down' },
      broker: 'end',
    });
  }

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    if (this.ending !== undefined) return;
    if (!isBinary) {
      this.end({
        reason: `text message (${CLOSE_CODES.unsupportedData})`,
        websocket: { code: CLOSE_CODES.unsupportedData, reason: 'binary messages only' },
        broker: 'end',
      });
      return;
    }
    const chunk = toBuffer(data);
    this.up += chunk.length;
    if (!this.brokerReady) {
      // A client normally sends only the 8-byte protocol header before the broker answers; this bound
      // is for one that does not wait.
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
      if (this.queuedBytes >= this.options.maxBufferedBytes) this.pauseWebSocket(false);
      return;
    }
    if (!this.broker.write(chunk)) this.pauseWebSocket(true);
  };

  private readonly onBrokerReady = (): void => {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.brokerReady = true;
    if (this.ending !== undefined) return;
    const { queued } = this;
    this.queued = [];
    this.queuedBytes = 0;
    let flowing = true;
    if (queued.length > 0) {
      this.broker.cork();
      for (const chunk of queued) flowing = this.broker.write(chunk);
      this.broker.uncork();
    }
    if (this.websocketPaused) {
      this.websocketPaused = false;
      this.websocket.resume();
    }
    if (!flowing) this.pauseWebSocket(true);
  };

  /** Stops reading from the browser; with `untilDrain`, until the broker socket drains. */
  private pauseWebSocket(untilDrain: boolean): void {
    if (this.websocketPaused) return;
    this.websocketPaused = true;
    this.websocket.pause();
    if (untilDrain) this.broker.once('drain', this.onBrokerDrain);
  }

  private readonly onBrokerDrain = (): void => {
    if (!this.websocketPaused || this.ending !== undefined) return;
    this.websocketPaused = false;
    this.websocket.resume();
  };

  private readonly onBrokerData = (chunk: Buffer): void => {
    // After an end nothing is copied; the broker socket is still read (and what it sends dropped), so
    // that its FIN arrives and it can close. A WebSocket no longer OPEN before any end has the
    // browser's close frame in and its 'close' event on the way: nothing can be sent to it either.
    if (this.ending !== undefined || this.websocket.readyState !== this.websocket.OPEN) return;
    this.down += chunk.length;
    // Each read is a Buffer of its own, so ws may hold it until it is written: no copy.
    this.websocket.send(chunk, { binary: true }, this.afterSend);
    if (!this.brokerPaused && this.websocket.bufferedAmount >= this.options.maxBufferedBytes) {
      this.brokerPaused = true;
      this.broker.pause();
      this.slowTimer = setTimeout(this.onSlowClient, this.options.slowClientTimeoutMs);
    }
  };

  /**
   * Called by ws as each message reaches the kernel: the moment to look whether the browser's buffer
   * is back under the limit (ws has no drain event).
   */
  private readonly afterSend = (): void => {
    if (!this.brokerPaused || this.ending !== undefined) return;
    if (this.websocket.bufferedAmount >= this.options.maxBufferedBytes) return;
    this.brokerPaused = false;
    clearTimeout(this.slowTimer);
    this.slowTimer = undefined;
    this.broker.resume();
  };

  private readonly onSlowClient = (): void => {
    this.slowTimer = undefined;
    // The close frame queues behind what the browser has not read: one that is still reading gets it;
    // one that is not is destroyed when the close makes no progress (see CLOSE_GRACE_MS). Either way
    // the broker socket goes at once, and with it anything more to hold.
    this.end({
      reason: `slow client (${CLOSE_CODES.policyViolation})`,
      websocket: { code: CLOSE_CODES.policyViolation, reason: 'slow client' },
      broker: 'destroy',
    });
  };

  private readonly onConnectTimeout = (): void => {
    this.connectTimer = undefined;
    this.end({
      reason: `broker connect timeout after ${this.options.connectTimeoutMs} ms (${CLOSE_CODES.badGateway})`,
      websocket: { code: CLOSE_CODES.badGateway, reason: 'broker connect timeout' },
      broker: 'destroy',
    });
  };

  private readonly onBrokerError = (error: Error): void => {
    if (this.ending !== undefined) return;
    const code = errorCode(error);
    if (!this.brokerReady) {
      this.end({
        reason: `broker unreachable: ${code} (${CLOSE_CODES.badGateway})`,
        websocket: { code: CLOSE_CODES.badGateway, reason: 'broker unreachable' },
        broker: 'destroy',
      });
    } else {
      this.end({
        reason: `broker error: ${code} (${CLOSE_CODES.internalError})`,
        websocket: { code: CLOSE_CODES.internalError, reason: 'broker connection failed' },
        broker: 'destroy',
      });
    }
  };

  private readonly onBrokerEnd = (): void => {
    // ws queues the close frame behind the messages already sent: the browser gets every byte first.
    this.end({
      reason: `broker closed (${CLOSE_CODES.normal})`,
      websocket: { code: CLOSE_CODES.normal, reason: '' },
      broker: 'end',
    });
  };

  private readonly onBrokerClose = (): void => {
    this.brokerClosed = true;
    // A close without an end or an error (destroyed from outside): still an orderly close downstream.
    this.onBrokerEnd();
    this.settle();
  };

  private readonly onWebSocketClose = (code: number): void => {
    this.websocketClosed = true;
    this.end({ reason: `client closed (${code})`, websocket: 'closed', broker: 'end' });
    this.settle();
  };

  private readonly onWebSocketError = (error: Error): void => {
    // ws closes the WebSocket itself after an error (1009 for a message over maxPayload, 1002 for a
    // bad frame) and then emits 'close'; this only names the cause.
    const code = errorCode(error);
    this.end({ reason: `client protocol error: ${code}`, websocket: 'closed', broker: 'end' });
  };

  /** The first end decides the reason and the close code; later ones only move the closes along. */
  private end(ending: Ending): void {
    if (this.ending !== undefined) return;
    this.ending = ending;
    clearTimeout(this.connectTimer);
    clearTimeout(this.slowTimer);
    this.connectTimer = undefined;
    this.slowTimer = undefined;
    this.queued = [];
    const { websocket, broker } = this;
    // Read the browser again, dropping what it sends, so that its close frame gets through.
    if (this.websocketPaused) websocket.resume();
    if (ending.websocket !== 'closed' && websocket.readyState === websocket.OPEN) {
      websocket.close(ending.websocket.code, ending.websocket.reason);
    }
    if (ending.broker === 'destroy' || !this.brokerReady) broker.destroy();
    else {
      broker.end();
      // Read on (and drop) until the broker's FIN, so that the socket can close.
      broker.resume();
    }
    if (!this.websocketClosed || !this.brokerClosed) {
      this.closeDeadline = performance.now() + Math.max(CLOSE_GRACE_MS, this.options.slowClientTimeoutMs);
      this.graceTimer = setTimeout(this.onGraceOver, CLOSE_GRACE_MS, this.unsent());
    }
  }

  /** Bytes still queued towards the browser and towards the broker. */
  private unsent(): number {
    return (
      (this.websocketClosed ? 0 : this.websocket.bufferedAmount) +
      (this.brokerClosed ? 0 : this.broker.writableLength)
    );
  }

  private readonly onGraceOver = (unsentBefore: number): void => {
    this.graceTimer = undefined;
    const unsent = this.unsent();
    if (unsent > 0 && unsent < unsentBefore && performance.now() < this.closeDeadline) {
      this.graceTimer = setTimeout(this.onGraceOver, CLOSE_GRACE_MS, unsent);
      return;
    }
    this.websocket.terminate();
    this.broker.destroy();
  };

  /** Once both sides are closed: the close line, then `onDone`. */
  private settle(): void {
    if (this.done || !this.websocketClosed || !this.brokerClosed) return;
    this.done = true;
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const { ending } = this;
    this.options.log?.(
      closeLine(this.id, this.info, {
        durationMs: performance.now() - this.startedAt,
        up: this.up,
        down: this.down,
        reason: ending?.reason ?? 'closed',
      }),
    );
    this.onDone();
  }
}
