/**
 * The size rxamqp adds to a browser application, measured on `fixtures/browser-program.ts` (connect
 * through a relay with recovery, consume with acks, publish), minified and gzipped, rxjs excluded:
 * see `browser-size.ts`. The test fails above the budget, so that growth is a decision, not an accident.
 *
 * The budget is the measured size (43.7 KB on 2026-12-06; 45.5 KB with the telemetry seam and
 * `diagnostics$` of issue 20, which every connection carries), not the 16 KB issue 19 first aimed at:
 * the client's core (the connection and channel state machines with recovery, confirms and ack
 * batching, the option checks with their messages, the codec) is what a program that connects and
 * consumes uses, and the state machines with the codec alone weigh 21 KB. docs/browser.md gives the
 * figures and what weighs what.
 */
import { join } from 'node:path';
import { stop } from 'esbuild';
import { measureBrowserProgram } from './browser-size.js';

/** Gzipped bytes the program may weigh. */
const BUDGET_GZIPPED = 46_000;

afterAll(async () => {
  await stop();
});

describe('the browser bundle of a program that connects, consumes and publishes', () => {
  it(`weighs at most ${BUDGET_GZIPPED} bytes minified and gzipped, rxjs excluded`, async () => {
    const size = await measureBrowserProgram(join(__dirname, '..', '..'));
    // Sanity: the program really bundles the client (a broken alias would measure nothing).
    expect(size.byFile.map((f) => f.file)).toEqual(
      expect.arrayContaining([
        'src/core/connection-core.ts',
        'src/transport/websocket.ts',
        'src/client/consumers.ts',
      ]),
    );
    expect(size.minified).toBeGreaterThan(size.gzipped);
    expect(size.gzipped).toBeLessThanOrEqual(BUDGET_GZIPPED);
  });
});
