/**
 * `rpc`: request/reply over RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`), 256-byte requests and
 * replies, rxamqp against the three peers, each in its natural code (`bench/rpc-clients/`), each
 * workload in its own process, on both targets:
 *
 * - `one`: one request at a time, each awaited before the next; rounds of 5,000 (null) or 2,000 (real)
 *   requests, 500 with `--quick`. Also reports the p50 and p99 latency (ms) of a request.
 * - `100`: 100 requests in flight; rounds of 50,000 (null) or 20,000 (real), 5,000 with `--quick`.
 *
 * The rate is requests per second (each one answered), CPU per 1,000 requests.
 *
 * The responder is never the client measured:
 * - `null` target: the null broker answers by itself. The request queue is declared with the argument
 *   `x-null-echo: true`, which makes every publish to it with a direct reply-to come back at once to
 *   the channel's reply consumer with its correlation id (see `lib/null-broker.ts`).
 * - `real` target: `rpc-responder.ts` (amqplib, prefetch 1,000) in a child process started by the
 *   workload's setup and stopped by its teardown, which echoes each request to its reply-to.
 *
 * Queues are declared (and deleted afterwards) through a short-lived rxamqp connection that is closed
 * before anything is measured, the same for every client.
 *
 * @module
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { ECHO_ARGUMENT } from './lib/null-broker.js';
import { closeWithin, percentile, slug, type Target, targetsOf, urlOf, withAdmin } from './lib/targets.js';
import type { Scenario, Workload } from './lib/types.js';
import { RPC_CLIENTS } from './rpc-clients/index.js';
import { RPC_CLIENT_NAMES, type RpcClient } from './rpc-clients/types.js';

const BODY = Buffer.alloc(256, 0x61);
const IN_FLIGHT = 100;
/** Longest a round may take before it is failed rather than left hanging. */
const ROUND_GUARD_MS = 300_000;

type Variant = 'one' | '100';

interface VariantPlan {
  readonly perRound: (target: Target, quick: boolean) => number;
  readonly description: string;
}

const VARIANTS: Readonly<Record<Variant, VariantPlan>> = {
  one: {
    perRound: (t, quick) => (quick ? 500 : t === 'null' ? 5000 : 2000),
    description: 'one request at a time, awaited',
  },
  '100': {
    perRound: (t, quick) => (quick ? 5000 : t === 'null' ? 50_000 : 20_000),
    description: `${IN_FLIGHT} requests in flight`,
  },
};

/** Starts the real broker's responder on `queue`; resolves once it consumes. */
async function startResponder(url: string, queue: string): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./rpc-responder.js', import.meta.url));
  const child = fork(script, [url, queue], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('rpc responder: not ready after 30 s')), 30_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`rpc responder exited with ${signal ?? `code ${code}`}`));
    });
  });
  return child;
}

/** Stops the responder (its own pid) and waits for it to go. */
async function stopResponder(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

function guarded<T>(work: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what}: no end after ${ROUND_GUARD_MS / 1000} s`)),
      ROUND_GUARD_MS,
    );
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

const scenario: Scenario = {
  name: 'rpc',
  description: `request/reply over direct reply-to (256 B): one at a time, and ${IN_FLIGHT} in flight; rxamqp and peers, both brokers`,
  workloads(ctx): Workload[] {
    const workloads: Workload[] = [];
    for (const target of targetsOf(ctx)) {
      for (const variant of ['one', '100'] as const) {
        const plan = VARIANTS[variant];
        for (const name of RPC_CLIENT_NAMES) {
          const queue = `rxamqp-bench-rpc-${slug(name)}`;
          let client: RpcClient | undefined;
          let responder: ChildProcess | undefined;
          workloads.push({
            name: `${name} ${variant} @${target}`,
            client: name,
            unit: 'message',
            params: { target, variant, bodySize: BODY.length, inFlight: variant === 'one' ? 1 : IN_FLIGHT },
            opsPerRound: plan.perRound(target, ctx.quick),
            warmupBatches: ctx.quick ? 1 : 2,
            async setup() {
              const url = urlOf(ctx, target);
              await withAdmin(url, async (ch) => {
                await lastValueFrom(
                  ch.queueDeclare(queue, {
                    durable: false,
                    autoDelete: false,
                    ...(target === 'null' ? { arguments: { [ECHO_ARGUMENT]: true } } : {}),
                  }),
                );
                await lastValueFrom(ch.queuePurge(queue));
              });
              if (target === 'real') responder = await startResponder(url, queue);
              client = await (await RPC_CLIENTS[name]())(url);
            },
            async run(n) {
              const c = client!;
              if (variant === '100') {
                await guarded(c.concurrent(queue, BODY, n, IN_FLIGHT), `${name} rpc`);
                return { ops: n };
              }
              const latencies = await guarded(c.sequential(queue, BODY, n), `${name} rpc`);
              latencies.sort((a, b) => a - b);
              return {
                ops: n,
                metrics: { 'p50 ms': percentile(latencies, 50), 'p99 ms': percentile(latencies, 99) },
              };
            },
            async teardown() {
              if (client !== undefined) await closeWithin(() => client!.close());
              if (responder !== undefined) await stopResponder(responder);
              await withAdmin(urlOf(ctx, target), async (ch) => {
                await lastValueFrom(ch.queueDelete(queue));
              }).catch(() => undefined);
            },
          });
        }
      }
    }
    return workloads;
  },
};

export default scenario;
