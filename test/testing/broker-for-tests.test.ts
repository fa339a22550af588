/**
 * `brokerForTests` (`rxamqp/testing`): the order of the lookup (AMQP_URL, the local address, the
 * embedded broker as a fallback or always), the failure that says how to get a broker, option checks,
 * and that neither the failure nor the broker's own representations show a password. The local case
 * runs against the RabbitMQ on 127.0.0.1:5672; testcontainers needs a Docker daemon, which this machine
 * does not have (a Docker daemon that does not answer is the case tested).
 */
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { lastValueFrom } from 'rxjs';
import { ConfigurationError, NoBrokerError } from '../../src/node.js';
import { brokerForTests, LOCAL_TEST_BROKER_URL, TestBroker } from '../../src/testing/node.js';

/** A URL where nothing listens (port 1 refuses at once), with a password that must never show. */
const NOWHERE = 'amqp://app:Sekr1tPw@127.0.0.1:1';
/** An environment with no AMQP_URL and a Docker host that does not answer. */
const NO_DOCKER_ENV = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };

function expectNoSecret(text: string): void {
  expect(text).not.toContain('Sekr1tPw');
}

describe('brokerForTests', () => {
  it('takes AMQP_URL as given, and shows it without its password', async () => {
    const broker = await brokerForTests({ env: { AMQP_URL: 'amqp://user:Sekr1tPw@mq.example:5673/v' } });
    expect(broker).toBeInstanceOf(TestBroker);
    expect(broker.source).toBe('AMQP_URL');
    expect(broker.url).toBe('amqp://user:Sekr1tPw@mq.example:5673/v');
    expect(broker.embedded).toBeUndefined();
    expect(broker.connectOptions).toEqual({});
    for (const shown of [String(broker), JSON.stringify(broker), inspect(broker), `${broker}`]) {
      expectNoSecret(shown);
      expect(shown).toContain('mq.example:5673');
    }
    await broker.stop();
  });

  it('finds the local RabbitMQ and connects to it', async () => {
    const broker = await brokerForTests({ env: {} });
    expect(broker.source).toBe('local');
    expect(broker.url).toBe(LOCAL_TEST_BROKER_URL);
    const conn = await broker.openConnection({ name: 'brokerForTests local' });
    const ch = await conn.openChannel();
    const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
    expect(queue).toMatch(/^amq\.gen-/);
    await lastValueFrom(conn.close());
    await broker.stop();
  });

  it('fails with NoBrokerError saying how to get a broker, without the password', async () => {
    const error = await brokerForTests({ env: NO_DOCKER_ENV, localUrl: NOWHERE, probeTimeoutMs: 500 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NoBrokerError);
    const e = error as NoBrokerError;
    expect(e.code).toBe('NO_BROKER');
    expect(e.message).toContain('AMQP_URL');
    expect(e.message).toContain('amqp://app:***@127.0.0.1:1');
    expect(e.message).toContain('testcontainers');
    expect(e.message).toContain("embedded: 'fallback'");
    expectNoSecret(e.message);
    expectNoSecret(inspect(e));
  });

  it('says testcontainers was not tried with docker: false', async () => {
    await expect(
      brokerForTests({ env: {}, localUrl: NOWHERE, probeTimeoutMs: 500, docker: false }),
    ).rejects.toThrow('testcontainers not tried');
  });

  it("falls back to the embedded broker with embedded: 'fallback'", async () => {
    const broker = await brokerForTests({
      env: NO_DOCKER_ENV,
      localUrl: NOWHERE,
      probeTimeoutMs: 500,
      embedded: 'fallback',
    });
    expect(broker.source).toBe('embedded');
    expect(broker.embedded).toBeDefined();
    expect(broker.connectOptions.transport).toBe(broker.embedded?.connector);
    const conn = await broker.openConnection();
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('jobs'));
    await lastValueFrom(ch.publish('', 'jobs', 'hello'));
    const got = await lastValueFrom(ch.get('jobs', { noAck: true }));
    expect(got === undefined ? undefined : new TextDecoder().decode(got.body)).toBe('hello');
    await lastValueFrom(conn.close());
    await broker.stop();
    await broker.stop();
  });

  it('is shown without the password however it is printed or copied', async () => {
    const broker = await brokerForTests({ env: { AMQP_URL: 'amqp://user:Sekr1tPw@mq.example' } });
    expect(broker.url).toBe('amqp://user:Sekr1tPw@mq.example');
    for (const shown of [
      inspect(broker, { showHidden: true }),
      inspect({ broker }),
      JSON.stringify({ ...broker }),
      JSON.stringify(Object.entries(broker)),
    ]) {
      expectNoSecret(shown);
    }
  });

  it('stops once: a second stop(), even while the first runs, does nothing more', async () => {
    const broker = await brokerForTests({ embedded: 'always' });
    const embedded = broker.embedded!;
    let closes = 0;
    const close = embedded.close.bind(embedded);
    embedded.close = () => {
      closes++;
      close();
    };
    const [first, second] = [broker.stop(), broker.stop()];
    expect(second).toBe(first);
    await Promise.all([first, second, broker.stop()]);
    expect(closes).toBe(1);
  });

  it("uses the embedded broker without looking with embedded: 'always' (even with AMQP_URL set)", async () => {
    const broker = await brokerForTests({ embedded: 'always', env: { AMQP_URL: 'amqp://x:y@nowhere' } });
    expect(broker.source).toBe('embedded');
    const events: string[] = [];
    const sub = broker
      .connect()
      .subscribe({ next: () => events.push('open'), complete: () => events.push('done') });
    await new Promise<void>((resolve) => {
      const check = (): void => (events.length > 0 ? resolve() : void setTimeout(check, 1));
      check();
    });
    expect(events).toEqual(['open']);
    sub.unsubscribe();
    await broker.stop();
  });

  it.each([
    [{ embedded: 'yes' }, "embedded must be false, 'fallback' or 'always'"],
    [{ probeTimeoutMs: -1 }, 'probeTimeoutMs must be a positive number'],
    [{ probeTimeoutMs: Number.NaN }, 'probeTimeoutMs must be a positive number'],
    [{ docker: 'no' }, 'docker must be a boolean'],
    [{ image: '' }, 'image must be a non-empty string'],
    [{ localUrl: 'http://u:Sekr1tPw@host' }, 'localUrl must be an amqp:// or amqps:// URL'],
    [{ localUrl: 'amqp://u:Sekr1tPw@[bad' }, 'localUrl is not a valid URL'],
    [{ localUrl: 5672 }, 'localUrl must be a string'],
    [{ env: 'AMQP_URL=amqp://u:Sekr1tPw@host' }, 'env must be an object'],
    [{ embeded: 'fallback' }, 'unknown option "embeded"'],
    [{ 'amqp://u:Sekr1tPw@host': true }, 'unknown option (not shown)'],
    ['amqp://u:Sekr1tPw@host', 'options must be an object'],
  ])('rejects the bad option %p with a ConfigurationError', async (options, message) => {
    const error = await brokerForTests(options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain(message);
    expectNoSecret((error as Error).message);
  });

  it('tries testcontainers when a Docker daemon answers, and reports why starting the container failed', async () => {
    // A stand-in daemon that answers the ping and refuses everything else: this machine has no Docker.
    const socket = join(tmpdir(), `rxamqp-fake-docker-${process.pid}.sock`);
    const requests: string[] = [];
    const daemon = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.writeHead(req.url === '/_ping' ? 200 : 500, { 'content-type': 'application/json' });
      res.end(req.url === '/_ping' ? 'OK' : '{"message":"no containers here"}');
    });
    await new Promise<void>((resolve) => daemon.listen(socket, resolve));
    // testcontainers finds its daemon through the process's own environment.
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix://${socket}`;
    try {
      const error = await brokerForTests({
        env: { DOCKER_HOST: `unix://${socket}` },
        localUrl: NOWHERE,
        probeTimeoutMs: 500,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoBrokerError);
      expect((error as Error).message).toContain('starting rabbitmq:3.13-alpine with testcontainers failed');
      expect((error as Error).cause).toBeInstanceOf(Error);
      expectNoSecret((error as Error).message);
      expect(requests[0]).toBe('GET /_ping');
      expect(requests.length).toBeGreaterThan(1); // testcontainers asked the daemon too
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
      await new Promise((resolve) => daemon.close(resolve));
    }
  });
});
