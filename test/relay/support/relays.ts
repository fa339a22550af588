/**
 * The set-up the relay's limit and close suites share: a fake broker started before each test, and
 * `relayWith(options)`, a relay to it on a free port; both closed after each test.
 */
import { type Relay, type RelayOptions, startRelay } from '../../../src/relay/index.js';
import { type FakeBroker, startFakeBroker } from './fake-broker.js';

/** Registers the hooks; `broker()` is the current test's fake broker. */
export function useRelaysToFakeBroker(): {
  broker: () => FakeBroker;
  relayWith: (options?: RelayOptions) => Promise<{ relay: Relay; url: string; port: number }>;
} {
  let broker: FakeBroker | undefined;
  const relays: Relay[] = [];
  beforeEach(async () => {
    broker = await startFakeBroker();
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.close()));
    await broker?.close();
  });
  return {
    broker: () => broker!,
    relayWith: async (options = {}) => {
      const relay = await startRelay({ port: 0, broker: broker!.url, ...options });
      relays.push(relay);
      const { port } = relay.address!;
      return { relay, url: `ws://127.0.0.1:${port}`, port };
    },
  };
}
