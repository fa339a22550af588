/**
 * The Angular example (examples/angular) in a real browser: built with Angular's CLI, served by a
 * small static server, opened in headless Chromium (Debian's), connected to RabbitMQ through
 * rxamqp's relay (WebSocket to TCP) started in this process. Node publishes 100 messages that the
 * page shows; the page publishes 10 with its form that a Node consumer receives; a screenshot goes
 * to test-results/angular-example.png; then the relay restarts on the same port and the page
 * recovers by itself (its state back to CONNECTED, a new message shown).
 *
 * Needs Chromium (`apt-get install -y chromium`, or CHROMIUM_PATH) and a broker (see
 * test/support/broker.ts): without them it fails, saying what to install; it never skips.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { lastValueFrom, take, toArray } from 'rxjs';
import type { Channel, Connection } from '../../src/node.js';
import { openConnection } from '../../src/node.js';
import { type Relay, startRelay } from '../../src/relay/index.js';
import { type BrokerEndpoint, brokerEndpoint } from '../support/broker.js';
import { buildAngularExample, chromiumPath, ROOT, serveStatic } from './support.js';

jest.setTimeout(180_000);

const RUN = `${process.pid}-${Date.now().toString(36)}`;
const INBOX = `rxamqp.angular.test.inbox.${RUN}`;
const OUTBOX = `rxamqp.angular.test.outbox.${RUN}`;
const SCREENSHOT = join(ROOT, 'test-results', 'angular-example.png');

let endpoint: BrokerEndpoint;
let site: Awaited<ReturnType<typeof serveStatic>> | undefined;
let relay: Relay | undefined;
let browser: Browser | undefined;
let page: Page;
let conn: Connection | undefined;
let ch: Channel;
/** Uncaught exceptions in the page, and what Angular's ErrorHandler logged (`ERROR ...`). */
const pageErrors: string[] = [];

function relayOptions(port: number) {
  return {
    host: '127.0.0.1',
    port,
    broker: `amqp://${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`,
    allowedOrigins: [site?.origin ?? ''],
  };
}

async function text(testId: string): Promise<string> {
  return (await page.locator(`[data-testid="${testId}"]`).first().textContent())?.trim() ?? '';
}

/** Waits for the page's status element to show `expected`. */
async function status(expected: string, timeout = 20_000): Promise<void> {
  try {
    await page
      .locator('[data-testid="status"]')
      .filter({ hasText: new RegExp(`^\\s*${expected}\\s*$`) })
      .waitFor({ timeout });
  } catch (error) {
    throw new Error(
      `the page's status is ${await text('status')}, not ${expected} (cause shown: ${await text('cause')}); page errors: ${pageErrors.join(' | ') || 'none'}`,
      { cause: error },
    );
  }
}

/** Waits until the page lists at least `n` elements matching `selector`. */
function atLeast(selector: string, n: number, timeout = 20_000): Promise<void> {
  return page
    .locator(selector)
    .nth(n - 1)
    .waitFor({ state: 'attached', timeout });
}

beforeAll(async () => {
  const executablePath = chromiumPath();
  endpoint = await brokerEndpoint();
  const build = await buildAngularExample();
  console.log(
    `examples/angular: ${build.built ? 'built with ng build' : 'reused the build of the same inputs'} in ${build.ms} ms`,
  );
  site = await serveStatic(build.dir);
  relay = await startRelay(relayOptions(0));
  browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on('pageerror', (error) => pageErrors.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && message.text().startsWith('ERROR')) pageErrors.push(message.text());
  });
  conn = await openConnection(endpoint.url);
  ch = await conn.openChannel();
  await lastValueFrom(ch.confirmSelect());
  // The page declares its inbox (durable) when it starts consuming; the test's consumer, the outbox.
  await lastValueFrom(ch.queueDeclare(OUTBOX, { durable: true }));
});

afterAll(async () => {
  try {
    if (conn?.isOpen) {
      for (const q of [INBOX, OUTBOX]) await lastValueFrom(ch.queueDelete(q), { defaultValue: undefined });
      await lastValueFrom(conn.close(), { defaultValue: undefined });
    }
  } finally {
    await browser?.close();
    await relay?.close();
    await site?.close();
  }
});

it('shows what Node publishes, publishes from its form, and recovers when the relay restarts', async () => {
  const port = relay!.address!.port;
  const query = new URLSearchParams({
    relay: `ws://127.0.0.1:${port}/`,
    queue: INBOX,
    publishTo: OUTBOX,
    username: endpoint.username,
    password: endpoint.password,
    vhost: endpoint.vhost,
  });
  await page.goto(`${site!.url}?${query}`);
  await status('CONNECTED');
  expect(await text('relay')).toBe(`ws://127.0.0.1:${port}/`);
  // Its consumer is up once the broker counts it (then nothing it is sent can miss it).
  const until = Date.now() + 10_000;
  while ((await lastValueFrom(ch.queueDeclare(INBOX, { durable: true }))).consumerCount < 1) {
    if (Date.now() > until) throw new Error(`the page never consumed ${INBOX}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  // Node → page: 100 messages, all shown, none twice.
  const sent = Array.from({ length: 100 }, (_, i) => `from-node-${i}`);
  for (const body of sent) ch.publish('', INBOX, body, { contentType: 'text/plain' }).subscribe();
  await lastValueFrom(ch.publish('', INBOX, 'from-node-last-check', {}).pipe(take(1)));
  await atLeast('[data-testid="message"]', 101);
  const shown = await page.$$eval('[data-testid="message"]', (rows) =>
    rows.map((r) => r.getAttribute('data-body')),
  );
  expect([...shown].sort()).toEqual([...sent, 'from-node-last-check'].sort());
  expect(await text('message-count')).toBe('101');

  // Page → Node: 10 messages published with the form, each confirmed by the broker.
  const received = lastValueFrom(ch.consume(OUTBOX, { noAck: true }).pipe(take(10), toArray()));
  for (let i = 0; i < 10; i++) {
    await page.fill('[data-testid="body"]', `from-page-${i}`);
    await page.click('[data-testid="publish"]');
  }
  const got = await received;
  expect(got.map((d) => d.text())).toEqual(Array.from({ length: 10 }, (_, i) => `from-page-${i}`));
  expect(got.every((d) => d.properties.contentType === 'text/plain' && d.properties.deliveryMode === 2)).toBe(
    true,
  );
  await atLeast('[data-testid="sent"][data-status="acked"]', 10, 10_000);

  mkdirSync(join(ROOT, 'test-results'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // The relay goes away (its WebSockets closed) and comes back on the same port: the page reconnects,
  // consumes again, and shows what was published meanwhile and after.
  await relay!.close();
  await status('RECONNECTING', 10_000);
  await lastValueFrom(ch.publish('', INBOX, 'while-the-relay-was-down', {}));
  relay = await startRelay(relayOptions(port));
  await status('CONNECTED');
  await lastValueFrom(ch.publish('', INBOX, 'after-the-restart', {}));
  await atLeast('[data-testid="message"]', 103);
  const latest = await page.$$eval('[data-testid="message"]', (rows) =>
    rows.slice(0, 2).map((r) => r.getAttribute('data-body')),
  );
  expect(latest.sort()).toEqual(['after-the-restart', 'while-the-relay-was-down']);
  expect(pageErrors).toEqual([]);
});
