/**
 * The raw benchmark client, the ceiling: pre-encoded frames written straight to a socket, no client
 * library (see bench/lib/raw-client.ts for what each method writes). Not a client users would run:
 * it negotiates no heartbeats, keeps no channel state, and its consumer acks with one `multiple`
 * `basic.ack` per socket read rather than one per message (the fewest acks that ack every message).
 *
 * - `publish`: pre-encoded triplets in slices of up to 1,000 (512 KiB), waiting for the socket's
 *   `'drain'` when `write` returns false; resolves at the last slice's write callback.
 * - `publishConfirmed`: the same slices on a confirm channel, at most `window` unconfirmed.
 * - `consume`: `basic.qos` + `basic.consume` on a channel of its own; a hand scanner reads each
 *   delivery's tag and skips its content (no decoding, no copy); one multiple ack per socket read;
 *   `basic.cancel` and `channel.close` after `n`. Other frames go through the project's `FrameDecoder`.
 * - `roundTrips`: prefetch 1; one pre-encoded triplet, the delivery, one pre-encoded ack.
 *
 * @module
 */
import type { BenchClient, BenchClientFactory } from '../lib/clients.js';
import { RawClient } from '../lib/raw-client.js';
import { CLOSE_GUARD_MS, Failure, orAbort, withTimeout } from './shared.js';

const NAME = 'raw' as const;

export const connectClient: BenchClientFactory = async (url) => {
  const raw = await RawClient.open(url);
  const failure = new Failure(NAME, () => raw.destroy());
  const client: BenchClient = {
    name: NAME,
    declareQueue: (queue) => failure.guard('declareQueue', () => raw.declare(queue)),
    purgeQueue: (queue) => failure.guard('purgeQueue', () => raw.purge(queue)),
    deleteQueue: (queue) => failure.guard('deleteQueue', () => raw.delete(queue)),
    queueDepth: (queue) => failure.guard('queueDepth', () => raw.depth(queue)),
    publish: (queue, body, n) =>
      failure.guard('publish', ({ signal }) => orAbort(raw.publish(queue, body, n), signal)),
    publishConfirmed: (queue, body, n, window) =>
      failure.guard('publishConfirmed', ({ signal }) =>
        orAbort(raw.publishConfirmed(queue, body, n, window), signal),
      ),
    consume: (queue, n, prefetch) =>
      failure.guard('consume', ({ signal }) => orAbort(raw.consume(queue, n, prefetch), signal)),
    roundTrips: (queue, body, n) =>
      failure.guard('roundTrips', ({ signal }) => orAbort(raw.roundTrips(queue, body, n), signal)),
    async close() {
      failure.fail(new Error(`${NAME}: the client is closed`));
      try {
        await withTimeout(
          raw.close(),
          CLOSE_GUARD_MS,
          `${NAME}: close did not finish within ${CLOSE_GUARD_MS / 1000} s`,
        );
      } catch (e) {
        raw.destroy();
        throw e;
      }
    },
  };
  return client;
};
