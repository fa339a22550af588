/**
 * `GET /prices/:sku?quantity=N` asks the price service over AMQP request/reply: on the module's
 * connection (`@InjectConnection()`, the one open now), a channel for the request, `channel.request`
 * (direct reply-to) with a timeout, and the reply, or its error as an HTTP error.
 */
import {
  Controller,
  GatewayTimeoutException,
  Get,
  HttpException,
  HttpStatus,
  Param,
  Query,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { ConnectionObservable, Delivery } from 'rxamqp';
import { InjectConnection, RPC_ERROR_HEADER } from 'rxamqp/nestjs';
import { firstValueFrom, switchMap, TimeoutError, take, timeout } from 'rxjs';
import { PRICES_QUEUE, type Quote } from './shop.js';

/** How long a price may take, in milliseconds. */
const REQUEST_TIMEOUT = 5_000;

/** The body of an error reply of an `@Rpc` handler. */
interface RpcErrorReply {
  readonly error: { readonly name: string; readonly message: string; readonly status?: number };
}

@Controller('prices')
export class PricesController {
  constructor(@InjectConnection() private readonly connection$: ConnectionObservable) {}

  @Get(':sku')
  async quote(@Param('sku') sku: string, @Query('quantity') quantity?: string): Promise<Quote> {
    const body = JSON.stringify(quantity === undefined ? { sku } : { sku, quantity });
    let reply: Delivery;
    try {
      reply = await firstValueFrom(
        this.connection$.pipe(
          // The connection open now (or the next one while reconnecting); one channel per request,
          // closed when the reply is in (a busy service would keep one open).
          take(1),
          switchMap((connection) => connection.channel()),
          switchMap((channel) =>
            channel.request(
              '',
              PRICES_QUEUE,
              body,
              { contentType: 'application/json' },
              { timeoutMs: REQUEST_TIMEOUT },
            ),
          ),
          // The wait for a connection counts too.
          timeout({ first: REQUEST_TIMEOUT * 2 }),
        ),
      );
    } catch (error) {
      if (error instanceof TimeoutError)
        throw new GatewayTimeoutException('the price service did not answer');
      throw new ServiceUnavailableException(
        `the price service is not reachable: ${(error as Error).message}`,
      );
    }
    if (reply.properties.headers?.[RPC_ERROR_HEADER] === true) {
      const { error } = reply.json<RpcErrorReply>();
      throw new HttpException(error.message, error.status ?? HttpStatus.BAD_GATEWAY);
    }
    return reply.json<Quote>();
  }
}
