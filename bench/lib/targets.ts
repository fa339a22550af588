/**
 * The brokers of the `rpc` and `idle` scenarios, chosen as the peer suite's are (`--target`, carried to
 * the workload processes in the environment), and the queue administration they do outside what is
 * measured.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { type Channel, openConnection } from '../../src/node.js';
import { NULL_BROKER_ENV, TARGETS_ENV } from './suite-env.js';
import type { ScenarioContext } from './types.js';

/** The broker a workload talks to. */
export type Target = 'real' | 'null';

/** The targets asked for (`--target`), in the suite's order. */
export function targetsOf(ctx: ScenarioContext): Target[] {
  const wanted = (ctx.env[TARGETS_ENV] ?? 'real,null').split(',').map((t) => t.trim());
  return (['real', 'null'] as const).filter((t) => wanted.includes(t));
}

/** The URL of `target`: RabbitMQ at `AMQP_URL` (or 127.0.0.1), or the runner's null broker. */
export function urlOf(ctx: ScenarioContext, target: Target): string {
  if (target === 'real') return ctx.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const url = ctx.env[NULL_BROKER_ENV];
  if (url === undefined) throw new Error(`the null broker is not running (${NULL_BROKER_ENV} is not set)`);
  return url;
}

/** A client name as a queue-name fragment. */
export function slug(client: string): string {
  return client.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
}

/**
 * Runs `work` on a channel of a short-lived rxamqp connection (declaring or deleting queues around a
 * workload), closed before it returns: it is not open while anything is measured.
 */
export async function withAdmin<T>(url: string, work: (ch: Channel) => Promise<T>): Promise<T> {
  const conn = await openConnection(url);
  try {
    return await work(await conn.openChannel());
  } finally {
    await lastValueFrom(conn.close(), { defaultValue: undefined });
  }
}

/** Percentile `p` of sorted values (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Closes a client, giving up after `ms` (a teardown must not hang the run). */
export async function closeWithin(close: () => Promise<void>, ms = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    close().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
