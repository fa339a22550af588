/**
 * The channels of a server connection: channel.open (with the channel_max limit) and both close
 * handshakes, the routing of methods and content to each channel, and what a channel's refusal
 * becomes (channel.close for a soft error, the connection's close for a hard one).
 *
 * @module
 * @internal
 */
import type { ContentMethod } from '../../protocol/frame-decoder.js';
import { type BasicProperties, METHOD_INFO, type Method } from '../../protocol/generated.js';
import { ServerChannel } from './channel.js';
import type { ChannelHost } from './channel-host.js';
import { BrokerFault } from './faults.js';

/** @internal What the table needs from its connection. */
export interface TableHost extends ChannelHost {
  /** The negotiated channel_max (0: no limit). */
  readonly channelMax: number;
  /** A hard error: connection.close naming the method (or class and method ids). */
  hardError(fault: BrokerFault, method: Method | ContentMethod | number, methodId?: number): void;
}

/** @internal */
export class ChannelTable {
  /** By channel number. */
  private readonly byNumber = new Map<number, ServerChannel>();
  /**
   * The same channels in channel-number order, for the loops run on every flush and every tick: a
   * client free to open channel 65535 must not make them walk 65,536 slots (an array indexed by
   * number did, for every chunk any client sent: 60 times slower).
   */
  private channels: ServerChannel[] = [];

  private get count(): number {
    return this.byNumber.size;
  }

  constructor(
    private readonly host: TableHost,
    /** The connection, as owner of its exclusive queues. */
    private readonly owner: object,
  ) {}

  /** The open (or closing) channels. */
  list(): ServerChannel[] {
    return this.channels.slice();
  }

  /** Whether content for `channel` is wanted (false also after a hard error it caused). */
  accepts(channel: number, method: ContentMethod): boolean {
    const ch = this.byNumber.get(channel);
    if (channel === 0 || ch === undefined) {
      this.protocolError(channel, method);
      return false;
    }
    return ch.open;
  }

  /** A whole message for `channel`. */
  content(channel: number, method: ContentMethod, properties: BasicProperties, body: Uint8Array): void {
    const ch = this.byNumber.get(channel);
    if (ch === undefined || !ch.open) return;
    if (method.name !== 'basic.publish') {
      this.host.hardError(
        new BrokerFault(503, 'unimplemented method'),
        60,
        METHOD_INFO[method.name].methodId,
      );
      return;
    }
    // try/catch here rather than a helper taking a callback: no closure per message.
    try {
      ch.publish(method, properties, body);
    } catch (e) {
      this.refusal(ch, method, e);
    }
  }

  flushConfirms(): void {
    const channels = this.channels;
    for (let i = 0; i < channels.length; i++) channels[i]!.flushConfirms();
  }

  /** The connection ends: every channel is released. */
  releaseAll(): void {
    // Every channel stops first: a message one gives back must not go to another on its way out.
    const channels = this.channels;
    this.channels = [];
    this.byNumber.clear();
    for (const c of channels) c.stop();
    for (const c of channels) c.release();
  }

  /** A method for channel `channel` (not 0). */
  method(channel: number, m: Method): void {
    const ch = this.byNumber.get(channel);
    if (m.name === 'channel.open') {
      if (ch !== undefined) {
        if (ch.open) this.host.hardError(new BrokerFault(504, "second 'channel.open' seen"), m);
        return;
      }
      if (this.host.channelMax !== 0 && this.count >= this.host.channelMax) {
        this.host.hardError(
          new BrokerFault(
            530,
            `number of channels opened (${this.count}) has reached the negotiated channel_max (${this.host.channelMax})`,
          ),
          0,
          0,
        );
        return;
      }
      const opened = new ServerChannel(channel, this.host, this.owner);
      this.byNumber.set(channel, opened);
      const channels = this.channels;
      let at = channels.length;
      while (at > 0 && channels[at - 1]!.id > channel) at--;
      channels.splice(at, 0, opened);
      this.host.writeMethod(channel, { name: 'channel.open-ok' });
      return;
    }
    if (ch === undefined) {
      this.host.hardError(new BrokerFault(504, "expected 'channel.open'"), m);
      return;
    }
    if (!ch.open) {
      // Closing after our channel.close: only the close handshake counts.
      if (m.name === 'channel.close-ok') this.removeChannel(channel);
      else if (m.name === 'channel.close') {
        this.host.writeMethod(channel, { name: 'channel.close-ok' });
        this.removeChannel(channel);
      }
      return;
    }
    if (m.name === 'channel.close') {
      ch.flushConfirms();
      ch.release();
      this.host.writeMethod(channel, { name: 'channel.close-ok' });
      this.removeChannel(channel);
      return;
    }
    if (m.name === 'channel.close-ok') return;
    if (m.name.startsWith('connection.')) {
      this.host.hardError(new BrokerFault(503, 'unimplemented method'), m);
      return;
    }
    try {
      ch.handle(m);
    } catch (e) {
      this.refusal(ch, m, e);
    }
  }

  /** What a channel operation threw: a soft error closes the channel, a hard one the connection. */
  private refusal(ch: ServerChannel, m: Method | ContentMethod, e: unknown): void {
    const fault =
      e instanceof BrokerFault ? e : new BrokerFault(541, e instanceof Error ? e.message : String(e));
    if (fault.hard) {
      this.host.hardError(fault, m);
      return;
    }
    const info = METHOD_INFO[m.name];
    this.closeChannel(ch, fault, info.classId, info.methodId);
  }

  /**
   * A soft error: channel.close, the channel's consumers and deliveries released at once. Confirms
   * not yet written are dropped: RabbitMQ closes the channel before it confirms publishes that came
   * with the failing method (the client fails them with the close).
   */
  private closeChannel(ch: ServerChannel, fault: BrokerFault, classId: number, methodId: number): void {
    ch.release();
    this.host.writeMethod(ch.id, {
      name: 'channel.close',
      replyCode: fault.replyCode,
      replyText: fault.replyText,
      classId,
      methodId,
    });
  }

  /**
   * RabbitMQ's consumer timeout: a channel holding a delivery unacknowledged for `timeoutMs` is
   * closed with 406 (RabbitMQ 3.x), or with `notifyConsumer` (RabbitMQ 4.3) the consumers holding
   * such deliveries are cancelled and the deliveries taken back.
   */
  expireDeliveries(now: number, timeoutMs: number, notifyConsumer: boolean): void {
    for (const ch of this.channels.slice()) {
      if (!ch.open) continue;
      const oldest = ch.oldestDelivery;
      if (oldest === undefined || now - oldest < timeoutMs) continue;
      if (notifyConsumer && ch.timeOutConsumers(now, timeoutMs)) continue;
      this.closeChannel(
        ch,
        new BrokerFault(
          406,
          `delivery acknowledgement on channel ${ch.id} timed out. Timeout value used: ${timeoutMs} ms. This timeout value can be configured, see consumers doc guide to learn more`,
        ),
        0,
        0,
      );
    }
  }

  private removeChannel(channel: number): void {
    const ch = this.byNumber.get(channel);
    if (ch === undefined) return;
    this.byNumber.delete(channel);
    const i = this.channels.indexOf(ch);
    if (i >= 0) this.channels.splice(i, 1);
  }

  /** Content on channel 0 or on a channel that is not open. */
  private protocolError(channel: number, method: ContentMethod): void {
    if (channel === 0) {
      this.host.hardError(new BrokerFault(504, 'unexpected method in connection state running'), method);
    } else this.host.hardError(new BrokerFault(504, "expected 'channel.open'"), method);
  }
}
