/**
 * An exchange of the model and the bindings from it: which destinations (queues or other exchanges)
 * a message with a given routing key and headers goes to. Direct bindings are indexed by key; topic
 * and headers bindings are matched one by one with the rules of `routing.ts`.
 *
 * @module
 * @internal
 */
import type { FieldTable } from '../../protocol/field-table.js';
import type { Queue } from './queue.js';
import { fieldEquals, headersMatch, topicMatchWords, topicWords } from './routing.js';

/** The exchange types the embedded broker implements. */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

/** @internal True for a type the broker implements. */
export function isExchangeType(type: string): type is ExchangeType {
  return type === 'direct' || type === 'fanout' || type === 'topic' || type === 'headers';
}

/** @internal A binding from an exchange to a queue or another exchange. */
export class Binding {
  /** The binding key split into words (topic exchanges). */
  readonly words: readonly string[];

  constructor(
    readonly source: Exchange,
    readonly destination: Queue | Exchange,
    readonly routingKey: string,
    readonly args: FieldTable,
  ) {
    this.words = source.type === 'topic' ? topicWords(routingKey) : [];
  }

  /** Same destination, key and arguments. */
  sameAs(destination: Queue | Exchange, routingKey: string, args: FieldTable): boolean {
    return this.destination === destination && this.routingKey === routingKey && fieldEquals(this.args, args);
  }
}

/** @internal */
export class Exchange {
  /** Bindings with this exchange as their source, in the order they were made. */
  readonly bindings: Binding[] = [];
  private readonly byKey = new Map<string, Binding[]>();
  /** Bindings with this exchange as their destination. */
  readonly incoming: Binding[] = [];
  deleted = false;
  /** Routing bookkeeping: the publish that last went through here (stops exchange-binding cycles). */
  routeMark = 0;

  constructor(
    readonly name: string,
    readonly type: ExchangeType,
    readonly durable: boolean,
    readonly autoDelete: boolean,
    readonly internal: boolean,
    readonly args: FieldTable,
  ) {}

  /** The `alternate-exchange` argument. */
  get alternate(): string | undefined {
    const ae = this.args['alternate-exchange'];
    return typeof ae === 'string' ? ae : undefined;
  }

  /** Adds a binding; false when an identical one exists. */
  add(binding: Binding): boolean {
    if (this.bindings.some((b) => b.sameAs(binding.destination, binding.routingKey, binding.args)))
      return false;
    this.bindings.push(binding);
    if (this.type === 'direct') {
      const list = this.byKey.get(binding.routingKey);
      if (list === undefined) this.byKey.set(binding.routingKey, [binding]);
      else list.push(binding);
    }
    return true;
  }

  /** Removes a binding (the one given, or the one equal to it). */
  remove(binding: Binding): void {
    const i = this.bindings.indexOf(binding);
    if (i < 0) return;
    this.bindings.splice(i, 1);
    const list = this.byKey.get(binding.routingKey);
    if (list !== undefined) {
      const j = list.indexOf(binding);
      if (j >= 0) list.splice(j, 1);
      if (list.length === 0) this.byKey.delete(binding.routingKey);
    }
  }

  /** The binding equal to the arguments, if any. */
  find(destination: Queue | Exchange, routingKey: string, args: FieldTable): Binding | undefined {
    return this.bindings.find((b) => b.sameAs(destination, routingKey, args));
  }

  /** Calls `visit` with the destination of every binding that matches. */
  match(
    routingKey: string,
    headers: FieldTable | undefined,
    visit: (destination: Queue | Exchange) => void,
  ): void {
    switch (this.type) {
      case 'direct': {
        const list = this.byKey.get(routingKey);
        if (list !== undefined) for (let i = 0; i < list.length; i++) visit(list[i]!.destination);
        return;
      }
      case 'fanout':
        for (let i = 0; i < this.bindings.length; i++) visit(this.bindings[i]!.destination);
        return;
      case 'topic': {
        const words = topicWords(routingKey);
        for (const b of this.bindings) if (topicMatchWords(b.words, words)) visit(b.destination);
        return;
      }
      case 'headers':
        for (const b of this.bindings) if (headersMatch(b.args, headers)) visit(b.destination);
        return;
    }
  }
}
