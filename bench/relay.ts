/**
 * `relay`: what the WebSocket relay (`rxamqp-relay`) costs against direct TCP, the figure issue 19 asks
 * for. The same work over two paths to one RabbitMQ:
 *
 * - `tcp`: `amqp://host:5672`, the client's TCP transport;
 * - `relay`: `ws://127.0.0.1:<port>/` to an `rxamqp-relay` started for the scenario in a process of its
 *   own (`dist/bench/src/relay/cli.js`, as it would run beside a web server), which opens TCP to the
 *   same broker. The client side is Node's WebSocket transport (the `ws` package).
 *
 * A round publishes N messages of 256 bytes (transient, to a transient queue, through a confirming
 * publisher with at most 1,000 unconfirmed) while a consumer on the same connection (prefetch 1,000)
 * acks each; it ends once all N are consumed. So the rate is messages through the broker and back,
 * per second, and the CPU figure is the client process's (the relay's own CPU is reported as the
 * `relayCpuMs` metric per round, read from /proc).
 *
 * RabbitMQ at `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`); skipped when it does not answer.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  filter,
  firstValueFrom,
  ignoreElements,
  lastValueFrom,
  map,
  range,
  type Subscription,
  take,
} from 'rxjs';
import { publishConfirmed } from '../operators/index.js';
import { type ConnectionObservable, connect, createPublisher, type Publisher } from '../src/node.js';
import { Counter } from './lib/counter.js';
import { closeWithin, withAdmin } from './lib/targets.js';
import type { Scenario, ScenarioContext, Workload } from './lib/types.js';

const BODY = new Uint8Array(256).fill(120);
const WINDOW = 1000;
const PREFETCH = 1000;
const PER_ROUND = 20_000;
const PER_ROUND_QUICK = 2_000;

/** The relay in a process of its own; resolves with its port once it listens. */
function startRelayProcess(broker: string): Promise<{ child: ChildProcess; port: number }> {
  const cli = fileURLToPath(new URL('../src/relay/cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, '--port', '0', '--broker', broker, '--quiet'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => {
      out += text;
      const match = /listening on ws:\/\/[^\s]*:(\d+)/.exec(out);
      if (match !== null) resolve({ child, port: Number(match[1]) });
    });
    child.once('exit', (code) => reject(new Error(`the relay exited with ${code} before listening: ${out}`)));
    child.once('error', reject);
  });
}

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux; 10 ms ticks). */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis):
    // utime and stime are the 14th and 15th fields of the line, in clock ticks (100 per second).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

function workload(name: 'tcp' | 'relay', amqpUrl: string, perRound: number): Workload {
  const counter = new Counter();
  let relay: { child: ChildProcess; port: number } | undefined;
  let connection$: ConnectionObservable | undefined;
  let keep: Subscription | undefined;
  let consuming: Subscription | undefined;
  let publisher: Publisher | undefined;
  const queue = `bench-relay-${name}-${process.pid}-${Date.now().toString(36)}`;
  return {
    name,
    client: 'rxamqp',
    unit: 'message',
    params: { path: name, bodyBytes: BODY.length, window: WINDOW, prefetch: PREFETCH },
    opsPerRound: perRound,
    async setup() {
      const broker = new URL(amqpUrl);
      let url = amqpUrl;
      if (name === 'relay') {
        relay = await startRelayProcess(`amqp://${broker.hostname}:${broker.port || 5672}`);
        const vhost = decodeURIComponent(broker.pathname.slice(1));
        url = `ws://${broker.username}:${broker.password}@127.0.0.1:${relay.port}/${vhost === '' ? '' : `?vhost=${encodeURIComponent(vhost)}`}`;
      }
      await withAdmin(amqpUrl, (ch) => lastValueFrom(ch.queueDeclare(queue, { durable: false })));
      connection$ = connect(url, { name: `bench-relay-${name}`, recovery: true, shared: true });
      keep = connection$.subscribe({ error: () => {} });
      const conn = await firstValueFrom(connection$);
      const ch = await conn.openChannel();
      consuming = ch.consume(queue, { prefetch: PREFETCH }).subscribe((delivery) => {
        delivery.ack();
        counter.add();
      });
      publisher = createPublisher(connection$, { confirm: true });
    },
    async run(n) {
      const pub = publisher!;
      const relayCpuBefore = relay === undefined ? 0 : cpuMsOf(relay.child.pid!);
      const consumed = counter.until(n, name);
      await lastValueFrom(
        range(0, n).pipe(
          map(() => ({ exchange: '', routingKey: queue, body: BODY })),
          publishConfirmed(pub, { window: WINDOW }),
          filter(({ outcome }) => outcome.status !== 'acked'),
          take(1),
          map(({ outcome }) => {
            throw new Error(`${name}: a publish was ${outcome.status}`);
          }),
          ignoreElements(),
        ),
        { defaultValue: undefined },
      );
      await consumed;
      if (relay === undefined) return undefined;
      return { metrics: { relayCpuMs: cpuMsOf(relay.child.pid!) - relayCpuBefore } };
    },
    async teardown() {
      consuming?.unsubscribe();
      const pub = publisher;
      if (pub !== undefined) await closeWithin(() => lastValueFrom(pub.close(), { defaultValue: undefined }));
      keep?.unsubscribe();
      await withAdmin(amqpUrl, (ch) => lastValueFrom(ch.queueDelete(queue))).catch(() => undefined);
      if (relay !== undefined) {
        const { child } = relay;
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
    },
  };
}

const scenario: Scenario = {
  name: 'relay',
  description: 'WebSocket relay vs direct TCP: confirmed publish + consume of 256 B messages, one connection',
  async workloads(ctx: ScenarioContext) {
    const amqpUrl = ctx.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
    const perRound = ctx.quick ? PER_ROUND_QUICK : PER_ROUND;
    try {
      await withAdmin(amqpUrl, async () => undefined);
    } catch (e) {
      return {
        skip: `no RabbitMQ at ${new URL(amqpUrl).host}: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    return [workload('tcp', amqpUrl, perRound), workload('relay', amqpUrl, perRound)];
  },
};

export default scenario;
