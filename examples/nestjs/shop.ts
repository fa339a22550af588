/**
 * The shop's names and types, shared by its parts: the `shop` topic exchange, the queues of the order
 * worker and of the price service, what an order looks like on the wire, and the price list.
 */

/** The topic exchange every shop event goes to (declared by the module's topology). */
export const SHOP_EXCHANGE = 'shop';
/** The order worker's queue, bound to `shop` with `order.*`. */
export const ORDERS_QUEUE = 'shop.orders';
/** The price service's request queue (request/reply). */
export const PRICES_QUEUE = 'shop.prices';

/** What `POST /orders` takes. */
export interface NewOrder {
  readonly sku: string;
  readonly quantity: number;
}

/** The `order.placed` event: the order and the id it was given. */
export interface PlacedOrder extends NewOrder {
  readonly id: string;
  readonly placedAt: string;
}

/** An order as the worker handled it. */
export interface HandledOrder extends PlacedOrder {
  /** The routing key it came with (`order.placed`). */
  readonly event: string;
  readonly handledAt: string;
}

/** What the price service answers. */
export interface Quote {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
  /** 10% off from 10 items. */
  readonly discountPercent: number;
  readonly totalCents: number;
  readonly currency: 'EUR';
}

/** Unit prices in cents, by SKU. */
export const PRICE_LIST: Readonly<Record<string, number>> = {
  apple: 50,
  pear: 65,
  melon: 320,
};
