/**
 * rxamqp's request/reply: `ch.request(exchange, routingKey, body)` on a channel from
 * `conn.openChannel()`, its public API as docs/publishing.md shows it, nothing tuned. The channel
 * starts its direct reply-to consumer with the first request and keeps it.
 *
 * - sequential: `for (...) await lastValueFrom(ch.request('', queue, body))`;
 * - concurrent: `lastValueFrom(range(0, n).pipe(mergeMap(() => ch.request('', queue, body), inFlight),
 *   count()))`.
 *
 * A failed channel or connection errors the requests' Observables, so a round rejects rather than hangs.
 *
 * @module
 */
import { count, lastValueFrom, mergeMap, range } from 'rxjs';
import { openConnection } from '../../src/node.js';
import type { RpcClientFactory } from './types.js';

export const openRpcClient: RpcClientFactory = async (url) => {
  const conn = await openConnection(url);
  const ch = await conn.openChannel();
  return {
    async sequential(queue, body, n) {
      const latencies = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await lastValueFrom(ch.request('', queue, body));
        latencies[i] = performance.now() - t0;
      }
      return latencies;
    },
    async concurrent(queue, body, n, inFlight) {
      const replies = await lastValueFrom(
        range(0, n).pipe(
          mergeMap(() => ch.request('', queue, body), inFlight),
          count(),
        ),
      );
      if (replies !== n) throw new Error(`rxamqp: ${replies} replies to ${n} requests`);
    },
    async close() {
      await lastValueFrom(conn.close(), { defaultValue: undefined });
    },
  };
};
