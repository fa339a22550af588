/**
 * Blocked connections: when RabbitMQ raises a resource alarm (memory or disk), it stops reading from
 * the connections that publish and tells each one with connection.blocked; connection.unblocked
 * follows once the alarm clears. Two publishers show how rxamqp reports it and what a publish does
 * meanwhile:
 *
 * - `waiting` (`whenBlocked: 'wait'`, the default) holds its publishes until the broker unblocks it,
 *   for at most `blockedTimeout`; a publish still held then fails with `PublishBlockedError`
 *   `BLOCKED_TIMEOUT`;
 * - `failing` (`whenBlocked: 'fail'`) fails every publish at once with `PublishBlockedError`
 *   `CONNECTION_BLOCKED`.
 *
 * Both log `blocked$`. Neither sends anything it reports as failed, so a failed publish can be retried.
 *
 * Run: npx tsx examples/blocked-publisher.ts           (RabbitMQ on 127.0.0.1:5672, or AMQP_URL)
 * publishes a few messages and says that no alarm is on. With `--alarm` it raises RabbitMQ's memory
 * alarm through the local `rabbitmqctl` (root) by setting the memory high watermark near zero, shows
 * the events, then always sets the watermark back to what it was (also on failure, Ctrl-C or timeout).
 * RabbitMQ blocks a connection only once it publishes during the alarm: a publisher that stays quiet
 * hears nothing.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import {
  type Channel,
  type Connection,
  openConnection,
  PublishBlockedError,
  type PublishOutcome,
} from 'rxamqp';
import { lastValueFrom, type Subscription, timeout } from 'rxjs';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const withAlarm = process.argv.includes('--alarm');
const runId = randomUUID().slice(0, 8);
const queue = `rxamqp-example-blocked-${runId}`;
const BLOCKED_TIMEOUT = 2_000;
const GUARD_MS = withAlarm ? 60_000 : 30_000;

const run = promisify(execFile);

async function rabbitmqctl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('rabbitmqctl', args, { encoding: 'utf8', timeout: 20_000 });
    return stdout.trim();
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? '--alarm needs the local rabbitmqctl (to set the memory watermark), and none is on the PATH'
        : `rabbitmqctl ${args.join(' ')} failed: ${(e as Error).message.trim()}`,
    );
  }
}

/** The memory watermark to put back, read before touching it; undefined until then. */
let savedWatermark: string | undefined;
let restored = true;

/** Sets the watermark back to `savedWatermark` (a fraction, or `{absolute,N}`); once. */
async function restoreWatermark(): Promise<void> {
  if (restored || savedWatermark === undefined) return;
  const absolute = /^\{absolute,\s*(\d+)\}$/.exec(savedWatermark);
  const relative = /^\{relative,\s*([\d.e+-]+)\}$/.exec(savedWatermark);
  if (absolute !== null) await rabbitmqctl('set_vm_memory_high_watermark', 'absolute', absolute[1]!);
  else await rabbitmqctl('set_vm_memory_high_watermark', relative?.[1] ?? savedWatermark);
  restored = true;
  console.log(`[alarm] memory high watermark restored to ${savedWatermark}`);
}

/** Restores the watermark (if it was changed), then exits. */
function exit(code: number): void {
  restoreWatermark().then(
    () => process.exit(code),
    (e: unknown) => {
      console.error(
        `COULD NOT RESTORE the memory watermark (${savedWatermark}): ${(e as Error).message}; ` +
          `run: rabbitmqctl set_vm_memory_high_watermark ${savedWatermark}`,
      );
      process.exit(1);
    },
  );
}

async function waitFor(what: string, predicate: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Logs the connection's blocked and unblocked notifications. */
function watchBlocked(name: string, conn: Connection): Subscription {
  return conn.blocked$.subscribe((event) =>
    console.log(event.blocked ? `[${name}] BLOCKED by the broker: ${event.reason}` : `[${name}] unblocked`),
  );
}

/**
 * Publishes one message and says how it went: the broker's answer, or why it was not sent. A
 * PublishBlockedError means nothing was written: the message can be sent again later.
 */
async function publish(name: string, ch: Channel, body: string): Promise<string> {
  try {
    const outcome: PublishOutcome = await lastValueFrom(ch.publish('', queue, body));
    console.log(`[${name}] ${body}: ${outcome.status}`);
    return outcome.status;
  } catch (e) {
    if (!(e instanceof PublishBlockedError)) throw e;
    console.log(`[${name}] ${body}: not sent, ${e.code} (${e.reason ?? 'no reason given'}); retry it later`);
    return e.code;
  }
}

async function main(): Promise<void> {
  if (withAlarm) {
    savedWatermark = await rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().');
    const fraction = Number(savedWatermark);
    if (Number.isFinite(fraction) && fraction < 0.001) {
      throw new Error(
        `the memory watermark is already ${savedWatermark}: something else is holding an alarm on; not touching it`,
      );
    }
    console.log(`[alarm] memory high watermark now: ${savedWatermark}`);
  }

  // closeTimeout bounds close() on a blocked connection: the broker does not read it, so its
  // close-ok never comes, and the socket is dropped after that long.
  const waiting = await openConnection(url, {
    name: `rxamqp-example-blocked-waiting-${runId}`,
    whenBlocked: 'wait',
    blockedTimeout: BLOCKED_TIMEOUT,
    closeTimeout: 2_000,
  });
  const failing = await openConnection(url, {
    name: `rxamqp-example-blocked-failing-${runId}`,
    whenBlocked: 'fail',
    closeTimeout: 2_000,
  });
  const watchers = [watchBlocked('waiting', waiting), watchBlocked('failing', failing)];
  try {
    const wch = await waiting.openChannel();
    const fch = await failing.openChannel();
    // x-expires: a queue left behind by an interrupted run disappears after a minute unused.
    await lastValueFrom(wch.queueDeclare(queue, { arguments: { 'x-expires': 60_000 } }));
    await lastValueFrom(wch.confirmSelect());
    await lastValueFrom(fch.confirmSelect());

    // Normal operation. If an alarm were on already, the broker would hold these (and block us).
    let sent = 0;
    for (const [name, ch, body] of [
      ['waiting', wch, 'hello-1'],
      ['waiting', wch, 'hello-2'],
      ['failing', fch, 'hello-3'],
    ] as const) {
      const outcome = await lastValueFrom(ch.publish('', queue, body).pipe(timeout(5_000))).catch(
        (e: unknown) => {
          const conn = name === 'waiting' ? waiting : failing;
          throw conn.isBlocked
            ? new Error(
                'a resource alarm is on already: the broker holds the publishes and blocks the connection',
              )
            : e;
        },
      );
      console.log(`[${name}] ${body}: ${outcome.status}`);
      sent++;
    }
    console.log(
      `no resource alarm is on: ${sent} messages published and acked, ` +
        `blocked: waiting=${waiting.isBlocked} failing=${failing.isBlocked}`,
    );
    if (!withAlarm) {
      console.log(
        'run with --alarm to raise the memory alarm (rabbitmqctl, root) and see the blocked publisher',
      );
      await lastValueFrom(wch.queueDelete(queue));
      return;
    }

    restored = false;
    await rabbitmqctl('set_vm_memory_high_watermark', '0.0000001');
    console.log('[alarm] memory high watermark set to 0.0000001: the memory alarm is on');

    // RabbitMQ blocks a connection when it publishes during the alarm. These first publishes are written
    // (the client does not know of the alarm yet); the broker holds them until the alarm clears.
    const probes: string[] = [];
    for (const [name, ch] of [
      ['waiting', wch],
      ['failing', fch],
    ] as const) {
      ch.publish('', queue, `probe-${name}`).subscribe({
        next: (o) => probes.push(`probe-${name}: ${o.status}`),
        error: (e: unknown) => probes.push(`probe-${name}: ${(e as Error).message}`),
      });
    }
    await waitFor('both connections to be blocked', () => waiting.isBlocked && failing.isBlocked);

    // whenBlocked: 'fail' — refused at once.
    const refused = await publish('failing', fch, 'refused');
    // whenBlocked: 'wait' — held, and refused after blockedTimeout.
    const started = Date.now();
    const late = await publish('waiting', wch, 'too-late');
    console.log(`[waiting] ... after ${Date.now() - started} ms (blockedTimeout ${BLOCKED_TIMEOUT})`);
    if (refused !== 'CONNECTION_BLOCKED' || late !== 'BLOCKED_TIMEOUT') {
      throw new Error(`expected CONNECTION_BLOCKED and BLOCKED_TIMEOUT, got ${refused} and ${late}`);
    }
    // whenBlocked: 'wait' — held, and sent once the broker unblocks the connection.
    const held = publish('waiting', wch, 'held');
    await new Promise((r) => setTimeout(r, 500));
    console.log(
      `[waiting] 'held' is waiting: blocked=${waiting.isBlocked}, probes answered: ${probes.length}`,
    );

    await restoreWatermark();
    await waitFor('both connections to be unblocked', () => !waiting.isBlocked && !failing.isBlocked);
    if ((await held) !== 'acked') throw new Error('the held publish was not acked after the unblock');
    await waitFor('the probes to be answered', () => probes.length === 2);
    for (const line of probes) console.log(`[probe] ${line}`);

    const { messageCount } = await lastValueFrom(wch.queueDelete(queue));
    console.log(
      `${messageCount} messages reached the queue: 3 hello, 2 probes, 'held' (not 'refused' nor 'too-late')`,
    );
    if (messageCount !== 6) throw new Error(`expected 6 messages in ${queue}, found ${messageCount}`);
  } finally {
    await restoreWatermark();
    for (const w of watchers) w.unsubscribe();
    await lastValueFrom(waiting.close());
    await lastValueFrom(failing.close());
  }
}

const guard = setTimeout(() => {
  console.error(`FAILED: the example did not finish within ${GUARD_MS / 1000} s`);
  exit(1);
}, GUARD_MS);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => exit(130));

main().then(
  () => {
    clearTimeout(guard);
    console.log('done');
    exit(0);
  },
  (e: unknown) => {
    console.error(`FAILED: ${e instanceof Error ? e.message : String(e)}`);
    exit(1);
  },
);
