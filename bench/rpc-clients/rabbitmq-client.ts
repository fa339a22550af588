/**
 * rabbitmq-client's request/reply: its own RPC client, `conn.createRPCClient({ confirm: false })`, and
 * `await rpc.send(queue, body)` per request (its README's example; it consumes direct reply-to on a
 * channel of its own and matches replies by correlation id). Its defaults stay: a 30 s timeout per
 * request, one attempt.
 *
 * The connection is awaited (`onConnect`) before the first request; its `'error'` destroys it rather
 * than letting it reconnect (a benchmark does not hide a reconnect), which closes the RPC client's
 * channel and so rejects the pending requests.
 *
 * @module
 */
import { Connection } from 'rabbitmq-client';
import { type RpcClientFactory, timedSequence, windowed } from './types.js';

export const openRpcClient: RpcClientFactory = async (url) => {
  const conn = new Connection(url);
  let failure: Error | undefined;
  const failed = new Promise<never>((_, reject) => {
    conn.on('error', (e: unknown) => {
      failure ??= e instanceof Error ? e : new Error(`rabbitmq-client: ${String(e)}`);
      conn.unsafeDestroy();
      reject(failure);
    });
  });
  failed.catch(() => undefined);
  await Promise.race([conn.onConnect(10_000), failed]);
  const rpc = conn.createRPCClient({ confirm: false });

  // No race with `failed` per request (it would cost rabbitmq-client a promise each): a failed
  // connection closes the RPC client's channel, which rejects every pending request (RPC_CLOSED).
  const request = (queue: string, body: Buffer): Promise<unknown> => rpc.send(queue, body);

  return {
    sequential: (queue, body, n) => timedSequence(n, () => request(queue, body)),
    concurrent: (queue, body, n, inFlight) => windowed(n, inFlight, () => request(queue, body)),
    async close() {
      await rpc.close();
      await conn.close();
    },
  };
};
