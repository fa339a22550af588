/**
 * The errors the embedded broker answers with: a reply code and RabbitMQ's reply text (the code's name,
 * " - ", then the explanation, as RabbitMQ 3.10 words it). The model throws them; the server layer
 * turns a soft one into channel.close and a hard one into connection.close, with the class and method
 * of the method being handled.
 *
 * @module
 * @internal
 */
import { utf8Length } from '../../protocol/bytes.js';
import { isHardError, REPLY_CODES } from '../../protocol/constants.js';

/** @internal A refusal with RabbitMQ's reply code and text. */
export class BrokerFault extends Error {
  readonly replyText: string;

  constructor(
    readonly replyCode: number,
    explanation: string,
  ) {
    const text = truncate(`${REPLY_CODES[replyCode]?.name ?? 'INTERNAL_ERROR'} - ${explanation}`);
    super(text);
    this.replyText = text;
  }

  /** True for the codes that close the connection rather than the channel. */
  get hard(): boolean {
    return isHardError(this.replyCode);
  }
}

/** @internal How RabbitMQ names a resource in its messages: `queue 'q' in vhost '/'`. */
export function resource(kind: 'queue' | 'exchange', name: string, vhost: string): string {
  return `${kind} '${name}' in vhost '${vhost}'`;
}

/** @internal 404: `no queue 'q' in vhost '/'`. */
export function notFound(kind: 'queue' | 'exchange', name: string, vhost: string): BrokerFault {
  return new BrokerFault(404, `no ${resource(kind, name, vhost)}`);
}

/** @internal 405: another connection's exclusive queue. */
export function locked(name: string, vhost: string): BrokerFault {
  return new BrokerFault(
    405,
    `cannot obtain exclusive access to locked ${resource('queue', name, vhost)}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
  );
}

/** @internal 406 with RabbitMQ's wording. */
export function precondition(explanation: string): BrokerFault {
  return new BrokerFault(406, explanation);
}

/** @internal 403 with RabbitMQ's wording. */
export function refused(explanation: string): BrokerFault {
  return new BrokerFault(403, explanation);
}

/** @internal 403 for declare/delete/bind on the default exchange. */
export function defaultExchangeRefused(): BrokerFault {
  return refused('operation not permitted on the default exchange');
}

/**
 * @internal RabbitMQ cuts a reply text longer than a short string (255 bytes) to 252 bytes and "...";
 * the broker cuts the other texts it writes into a short string (a block reason) the same way.
 */
export function truncate(text: string): string {
  if (utf8Length(text) <= 255) return text;
  let cut = text.slice(0, 252);
  while (utf8Length(cut) > 252) cut = cut.slice(0, -1);
  return `${cut}...`;
}
