/**
 * The price service: an `@Rpc` handler on `shop.prices`. Its result is the reply (JSON); what it
 * throws becomes an error reply that carries the HTTP status of Nest's exceptions (404 for an unknown
 * SKU, 400 from the pipes), which `GET /prices/:sku` turns back into that status.
 */
import { DefaultValuePipe, Injectable, NotFoundException, ParseIntPipe } from '@nestjs/common';
import { AmqpPayload, Rpc } from 'rxamqp/nestjs';
import { PRICE_LIST, PRICES_QUEUE, type Quote } from './shop.js';

@Injectable()
export class PricesRpc {
  @Rpc({ queue: PRICES_QUEUE, concurrency: 4 })
  quote(
    @AmqpPayload('sku') sku: unknown,
    // The request's quantity is as the caller sent it (a query string): the pipes default it to 1
    // and make it an integer, or answer 400.
    @AmqpPayload('quantity', new DefaultValuePipe(1), new ParseIntPipe()) quantity: number,
  ): Quote {
    const unitPriceCents = typeof sku === 'string' ? PRICE_LIST[sku] : undefined;
    if (typeof sku !== 'string' || unitPriceCents === undefined) {
      throw new NotFoundException(`no price for ${String(sku)}`);
    }
    const discountPercent = quantity >= 10 ? 10 : 0;
    const totalCents = Math.round((unitPriceCents * quantity * (100 - discountPercent)) / 100);
    return { sku, quantity, unitPriceCents, discountPercent, totalCents, currency: 'EUR' };
  }
}
