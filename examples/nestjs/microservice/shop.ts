/**
 * The fixed names and the data of the microservice example: its exchange and queues (all prefixed
 * `example.ms.`, apart from the other examples' names), the event and request payloads, the stock.
 */

/** The topic exchange the events and requests are published to: their pattern is the routing key. */
export const EXCHANGE = 'example.ms.events';

/** The queue of the order events (`order.*`). */
export const ORDERS_QUEUE = 'example.ms.orders';

/** The queue of the stock requests (`stock.get`). */
export const STOCK_QUEUE = 'example.ms.stock';

/** The payload of an `order.*` event. */
export interface OrderEvent {
  readonly id: number;
}

/** One event the controller handled. */
export interface HandledEvent {
  readonly pattern: string;
  readonly order: OrderEvent;
}

/** The reply to `stock.get`. */
export interface StockLevel {
  readonly sku: string;
  readonly level: number;
}

/** What is in stock, by SKU. */
export const STOCK: Readonly<Record<string, number>> = { apple: 12, melon: 3, pear: 0 };
