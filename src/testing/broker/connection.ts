/**
 * The server side of one AMQP connection: the protocol header, the handshake (PLAIN or AMQPLAIN
 * login against the broker's users, tune, the virtual host), frames to its {@link ChannelTable},
 * heartbeats (echoed, or on a timer when the broker has timers), blocking, and both close
 * handshakes. Errors follow RabbitMQ: a soft one closes its channel with
 * channel.close, a hard one the connection with connection.close, each naming the class and method
 * that caused it.
 *
 * @module
 * @internal
 */
import { FrameError } from '../../errors.js';
import type { FieldTable } from '../../protocol/field-table.js';
import { type ContentMethod, FrameDecoder, type FrameHandler } from '../../protocol/frame-decoder.js';
import { FrameWriter } from '../../protocol/frame-writer.js';
import {
  type BasicProperties,
  FRAME_MIN_SIZE,
  METHOD_INFO,
  type Method,
  type MethodInit,
  PROTOCOL_HEADER,
} from '../../protocol/generated.js';
import type { ServerChannel } from './channel.js';
import type { PublishInfo } from './channel-host.js';
import { ChannelTable, type TableHost } from './channels.js';
import { BrokerFault, truncate } from './faults.js';
import { frameFault } from './frame-faults.js';
import type { MemoryLink, ServerEnd } from './memory-transport.js';
import { later } from './memory-transport.js';
import type { NameGenerator } from './names.js';
import { parseResponse } from './sasl.js';
import type { VirtualHost } from './vhost.js';

/** @internal What a connection needs from the broker. */
export interface ConnectionEnvironment {
  readonly channelMax: number;
  readonly frameMax: number;
  readonly heartbeat: number;
  readonly timers: boolean;
  readonly names: NameGenerator;
  readonly serverProperties: FieldTable;
  now(): number;
  /** True when the credentials are those of a user. */
  authenticate(user: string, password: string): boolean;
  /** Undefined when allowed, else why not (`vhost x not found`, ...). */
  refuseVhost(user: string, vhost: string): string | undefined;
  vhost(name: string): VirtualHost;
  /** Expires messages before anything is handled. */
  tick(): void;
  /** After a batch of work: timers may need rescheduling. */
  settled(): void;
  nackRequested(publish: PublishInfo): boolean;
  /** True when some nack rule is in force (only then is each confirmed publish described to them). */
  readonly nacking: boolean;
  /** The broker-wide block, if any. */
  readonly blockReason: string | undefined;
  closed(connection: ServerConnection): void;
}

type State = 'header' | 'start' | 'tune' | 'open-wait' | 'open' | 'closing' | 'closed';

/** @internal */
export class ServerConnection implements ServerEnd, FrameHandler, TableHost {
  state: State = 'header';
  private header: number[] = [];
  private readonly decoder: FrameDecoder;
  private readonly writer = new FrameWriter();
  private readonly channels = new ChannelTable(this, this);
  user = '';
  vhostName = '';
  private vhostRef: VirtualHost | undefined;
  clientProperties: FieldTable = {};
  cancelNotify = false;
  private blockedCapable = false;
  private authFailureClose = false;
  channelMax = 0;
  frameMax = FRAME_MIN_SIZE;
  heartbeat = 0;
  /** A broker block reached this connection: its publishes (and what follows them) wait. */
  private holding: (() => void)[] | undefined;
  /** connection.blocked was sent: connection.unblocked follows the unblock. */
  private blockedNotified = false;
  private flushScheduled = false;
  private endAfterFlush = false;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private sentSinceBeat = false;
  private receivedSinceBeat = false;

  constructor(
    readonly id: number,
    private readonly link: MemoryLink,
    private readonly env: ConnectionEnvironment,
  ) {
    this.decoder = new FrameDecoder(this);
  }

  get names(): NameGenerator {
    return this.env.names;
  }

  get vhost(): VirtualHost {
    return this.vhostRef!;
  }

  now(): number {
    return this.env.now();
  }

  nackRequested(publish: PublishInfo): boolean {
    return this.env.nackRequested(publish);
  }

  get nacking(): boolean {
    return this.env.nacking;
  }

  /** The `connection_name` the client gave, if any. */
  get name(): string | undefined {
    const n = this.clientProperties.connection_name;
    return typeof n === 'string' ? n : undefined;
  }

  get openChannels(): ServerChannel[] {
    return this.channels.list();
  }

  get isBlocked(): boolean {
    return this.holding !== undefined;
  }

  // ---- output ---------------------------------------------------------------------------------

  writeMethod(channel: number, method: MethodInit): void {
    this.writer.writeMethod(channel, method);
    this.scheduleFlush();
  }

  writeContent(channel: number, method: MethodInit, properties: BasicProperties, body: Uint8Array): void {
    this.writer.writeContent(channel, method, properties, body);
    this.scheduleFlush();
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    later(this.flushTask);
  }

  private readonly flushTask = (): void => {
    if (this.flushScheduled) this.flush();
  };

  /** Writes what is pending to the client (confirms first collected into acks and nacks). */
  flush(): void {
    try {
      this.flushNow();
    } catch (e) {
      this.fail(e);
    }
  }

  private flushNow(): void {
    this.flushScheduled = false;
    this.channels.flushConfirms();
    const segments = this.writer.takeSegments();
    if (segments.length > 0) {
      this.sentSinceBeat = true;
      this.link.toClient(segments);
    }
    if (this.endAfterFlush) {
      this.endAfterFlush = false;
      this.link.serverEnd();
      this.finish();
    }
    this.env.settled();
  }

  // ---- input ----------------------------------------------------------------------------------

  receive(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    try {
      this.receiveNow(chunk);
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Whatever throws while the broker handles input or writes output (a fault of the broker's own,
   * never expected) ends this connection with 541 INTERNAL_ERROR, or drops it when that cannot be
   * written: it never escapes into the job that moves the bytes, where it would be an unhandled
   * rejection and leave the connection hanging.
   */
  private fail(e: unknown): void {
    if (this.state === 'closed') return;
    const text = e instanceof Error ? e.message : String(e);
    try {
      if (this.state === 'closing') throw e;
      this.closeWith(541, new BrokerFault(541, text).replyText, 0, 0);
    } catch {
      this.writer.takeSegments();
      this.holding = undefined;
      try {
        this.releaseAll();
      } catch {
        // Released as far as it could be: the connection goes regardless.
      }
      this.link.serverDrop(new Error(`the embedded broker failed: ${text}`), undefined);
      this.finish();
    }
  }

  private receiveNow(chunk: Uint8Array): void {
    this.receivedSinceBeat = true;
    this.env.tick();
    let bytes = chunk;
    if (this.state === 'header') {
      let i = 0;
      while (this.header.length < 8 && i < bytes.length) this.header.push(bytes[i++]!);
      if (this.header.length < 8) return;
      if (!this.header.every((b, k) => b === PROTOCOL_HEADER[k])) {
        // Not AMQP 0-9-1: answer with the header we speak and hang up, as RabbitMQ does.
        this.writer.takeSegments();
        this.link.toClient([PROTOCOL_HEADER.slice()]);
        this.link.serverEnd();
        this.finish();
        return;
      }
      this.state = 'start';
      this.writeMethod(0, {
        name: 'connection.start',
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: this.env.serverProperties,
        mechanisms: 'PLAIN AMQPLAIN',
        locales: 'en_US',
      });
      bytes = bytes.subarray(i);
      if (bytes.length === 0) return;
    }
    try {
      this.decoder.push(bytes);
    } catch (e) {
      if ((this.state as State) === 'closing' || (this.state as State) === 'closed') return;
      if (!(e instanceof FrameError)) {
        this.hardError(new BrokerFault(541, String(e)), 0, 0);
        return;
      }
      const f = frameFault(e);
      if (f === 'hangup') {
        this.releaseAll();
        this.link.serverEnd();
        this.finish();
      } else this.hardError(f.fault, f.classId, f.methodId);
    }
  }

  onHeartbeat(): void {
    // Without timers of its own, the broker answers each heartbeat: the client's dead-peer check
    // then sees traffic from the broker whenever it sends one.
    if (!this.env.timers && this.state === 'open') {
      this.writer.writeHeartbeat();
      this.scheduleFlush();
    }
  }

  acceptContent(channel: number, method: ContentMethod): boolean {
    if (this.state !== 'open') {
      // Before the connection is open, content is refused as a method on a channel is (504).
      if (this.state !== 'closing' && this.state !== 'closed') {
        this.hardError(new BrokerFault(504, "expected 'channel.open'"), method);
      }
      return false;
    }
    return this.channels.accepts(channel, method);
  }

  onContent(channel: number, method: ContentMethod, properties: BasicProperties, body: Uint8Array): void {
    if (this.holding !== undefined) {
      this.holding.push(() => this.content(channel, method, properties, body));
      return;
    }
    const reason = this.env.blockReason;
    if (reason !== undefined && method.name === 'basic.publish') {
      // A resource alarm: as RabbitMQ, the connection is blocked (and told so) when it publishes;
      // this publish and everything after it waits for the unblock.
      this.holding = [() => this.content(channel, method, properties, body)];
      if (this.blockedCapable) {
        this.blockedNotified = true;
        this.writeMethod(0, { name: 'connection.blocked', reason });
      }
      return;
    }
    this.content(channel, method, properties, body);
  }

  private content(
    channel: number,
    method: ContentMethod,
    properties: BasicProperties,
    body: Uint8Array,
  ): void {
    if (this.state === 'open') this.channels.content(channel, method, properties, body);
  }

  onMethod(channel: number, method: Method): void {
    if (this.state === 'closing') {
      if (channel !== 0) return;
      if (method.name === 'connection.close-ok') this.end();
      else if (method.name === 'connection.close') {
        this.writeMethod(0, { name: 'connection.close-ok' });
        this.end();
      }
      return;
    }
    if (this.state === 'closed') return;
    if (channel === 0) {
      this.connectionMethod(method);
      return;
    }
    if (this.state !== 'open') {
      this.hardError(new BrokerFault(504, `expected 'channel.open'`), method);
      return;
    }
    if (this.holding !== undefined) {
      // Run only if still open then: a held publish replayed before it may have closed the connection.
      this.holding.push(() => {
        if (this.state === 'open') this.channels.method(channel, method);
      });
      return;
    }
    this.channels.method(channel, method);
  }

  // ---- connection methods ---------------------------------------------------------------------

  private connectionMethod(m: Method): void {
    switch (this.state) {
      case 'start':
        if (m.name !== 'connection.start-ok') break;
        this.startOk(m);
        return;
      case 'tune':
        if (m.name !== 'connection.tune-ok') break;
        this.tuneOk(m);
        return;
      case 'open-wait':
        if (m.name !== 'connection.open') break;
        this.open(m.virtualHost);
        return;
      case 'open':
        if (m.name === 'connection.close') {
          this.writeMethod(0, { name: 'connection.close-ok' });
          this.releaseAll();
          this.end();
          return;
        }
        if (m.name === 'connection.update-secret') {
          this.writeMethod(0, { name: 'connection.update-secret-ok' });
          return;
        }
        if (m.name.startsWith('connection.')) break;
        this.hardError(new BrokerFault(504, 'unexpected method in connection state running'), m);
        return;
      default:
        return;
    }
    this.hardError(new BrokerFault(503, `unexpected method ${m.name} in connection state ${this.state}`), m);
  }

  private startOk(m: Extract<Method, { name: 'connection.start-ok' }>): void {
    this.clientProperties = m.clientProperties;
    const caps = m.clientProperties.capabilities;
    const has = (k: string): boolean =>
      typeof caps === 'object' && caps !== null && (caps as Record<string, unknown>)[k] === true;
    this.cancelNotify = has('consumer_cancel_notify');
    this.blockedCapable = has('connection.blocked');
    this.authFailureClose = has('authentication_failure_close');
    const credentials = parseResponse(m.mechanism, m.response);
    if (credentials === undefined || !this.env.authenticate(credentials[0], credentials[1])) {
      const mechanism = m.mechanism;
      if (this.authFailureClose) {
        this.writeMethod(0, {
          name: 'connection.close',
          replyCode: 403,
          replyText: `ACCESS_REFUSED - Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`,
          classId: 0,
          methodId: 0,
        });
      }
      this.state = 'closing';
      this.end();
      return;
    }
    this.user = credentials[0];
    this.state = 'tune';
    this.writeMethod(0, {
      name: 'connection.tune',
      channelMax: this.env.channelMax,
      frameMax: this.env.frameMax,
      heartbeat: this.env.heartbeat,
    });
  }

  private tuneOk(m: Extract<Method, { name: 'connection.tune-ok' }>): void {
    const serverMax = this.env.frameMax;
    const frameMax = m.frameMax === 0 ? serverMax : m.frameMax;
    // 0 from both sides (a broker configured with frameMax 0): no limit.
    if (frameMax !== 0 && frameMax < FRAME_MIN_SIZE) {
      this.hardError(new BrokerFault(530, `frame_max=${m.frameMax} < ${FRAME_MIN_SIZE} min size`), m);
      return;
    }
    if (serverMax !== 0 && frameMax > serverMax) {
      this.hardError(new BrokerFault(530, `frame_max=${m.frameMax} > ${serverMax} max size`), m);
      return;
    }
    this.frameMax = frameMax;
    this.channelMax = m.channelMax === 0 ? this.env.channelMax : m.channelMax;
    this.heartbeat = m.heartbeat;
    this.decoder.frameMax = frameMax;
    this.writer.frameMax = frameMax;
    this.state = 'open-wait';
    if (this.env.timers && m.heartbeat > 0) this.startHeartbeats(m.heartbeat);
  }

  private open(vhost: string): void {
    const refusal = this.env.refuseVhost(this.user, vhost);
    if (refusal !== undefined) {
      this.hardError(new BrokerFault(530, refusal), 10, 40);
      return;
    }
    this.vhostName = vhost;
    this.vhostRef = this.env.vhost(vhost);
    this.state = 'open';
    this.writeMethod(0, { name: 'connection.open-ok' });
  }

  /**
   * With timers: a heartbeat when nothing was sent for half an interval, and, as RabbitMQ, the
   * connection is dropped (no connection.close) after two intervals without a byte from the client.
   */
  private startHeartbeats(seconds: number): void {
    let silentTicks = 0;
    this.heartbeatTimer = setInterval(
      () => {
        if (this.state !== 'open') return;
        if (this.receivedSinceBeat) {
          this.receivedSinceBeat = false;
          silentTicks = 0;
        } else if (++silentTicks >= 4) {
          this.releaseAll();
          this.link.serverEnd();
          this.finish();
          return;
        }
        if (!this.sentSinceBeat) {
          this.writer.writeHeartbeat();
          this.scheduleFlush();
        }
        this.sentSinceBeat = false;
      },
      (seconds * 1000) / 2,
    );
    (this.heartbeatTimer as { unref?: () => void }).unref?.();
  }

  // ---- blocking -------------------------------------------------------------------------------

  /** When its oldest unsettled delivery was made, or undefined. */
  get oldestDelivery(): number | undefined {
    let oldest: number | undefined;
    for (const ch of this.channels.list()) {
      const t = ch.oldestDelivery;
      if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
    }
    return oldest;
  }

  /** The consumer timeout: closes the channels that held a delivery unacknowledged too long. */
  expireDeliveries(now: number, timeoutMs: number, notifyConsumer: boolean): void {
    if (this.state === 'open')
      this.channels.expireDeliveries(now, timeoutMs, notifyConsumer && this.cancelNotify);
  }

  /** The alarm cleared: connection.unblocked, and what waited runs in order. */
  unblock(): void {
    if (this.blockedNotified && this.state === 'open') this.writeMethod(0, { name: 'connection.unblocked' });
    this.blockedNotified = false;
    const held = this.holding;
    this.holding = undefined;
    if (held === undefined) return;
    for (let i = 0; i < held.length; i++) {
      const again = this.holding as (() => void)[] | undefined;
      if (again !== undefined) {
        // Blocked again while replaying: the rest waits again, in order.
        again.push(...held.slice(i));
        return;
      }
      held[i]!();
    }
    this.scheduleFlush();
  }

  // ---- closing --------------------------------------------------------------------------------

  /** A hard error: connection.close with the code, then wait for close-ok. */
  hardError(fault: BrokerFault, method: Method | ContentMethod | number, methodId = 0): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    let classId = 0;
    if (typeof method === 'number') classId = method;
    else {
      const info = METHOD_INFO[method.name];
      classId = info.classId;
      methodId = info.methodId;
    }
    this.closeWith(fault.replyCode, fault.replyText, classId, methodId);
  }

  /** Sends connection.close (a forced close, an error) and releases everything at once. */
  closeWith(replyCode: number, replyText: string, classId: number, methodId: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.state === 'header') {
      // No protocol header yet, so no AMQP to speak: RabbitMQ just closes the socket.
      this.link.serverEnd();
      this.finish();
      return;
    }
    const handshaking = this.state === 'start' || this.state === 'tune';
    this.stopHeartbeats();
    this.state = 'closing';
    this.releaseAll();
    this.writeMethod(0, {
      name: 'connection.close',
      replyCode,
      replyText: truncate(replyText),
      classId,
      methodId,
    });
    // During the login, RabbitMQ hangs up after the close without waiting for close-ok.
    if (handshaking) this.end();
  }

  /** Ends the connection after the pending output. */
  private end(): void {
    this.state = 'closing';
    this.endAfterFlush = true;
    this.scheduleFlush();
  }

  /** Breaks the connection at once: the client sees a transport error, after `partial` if given. */
  drop(error: Error, partial: Uint8Array | undefined): void {
    if (this.state === 'closed') return;
    this.writer.takeSegments();
    this.releaseAll();
    this.link.serverDrop(error, partial);
    this.finish();
  }

  /** The client's transport ended or was destroyed. */
  clientGone(): void {
    this.releaseAll();
    this.finish();
  }

  private releaseAll(): void {
    this.holding = undefined;
    this.channels.releaseAll();
    this.vhostRef?.deleteOwnedBy(this);
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopHeartbeats();
    this.env.closed(this);
  }

  /** Closing or closed, the connection sends no heartbeats and checks none: no timer outlives it. */
  private stopHeartbeats(): void {
    if (this.heartbeatTimer === undefined) return;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
