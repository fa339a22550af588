/**
 * The broker operations the recovery tests need, through the local `rabbitmqctl` (which works as root
 * on the test machine): force-closing a connection by its name, stopping and starting the broker
 * application, and setting the memory watermark. Each fails loudly, with instructions, when
 * `rabbitmqctl` is missing or refuses.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `rabbitmqctl args...` and returns its standard output. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('rabbitmqctl', args, { encoding: 'utf8', timeout: 60_000 });
    return stdout;
  } catch (e) {
    throw new Error(
      `rabbitmqctl ${args.join(' ')} failed: ${(e as Error).message}. The recovery tests need the local ` +
        'RabbitMQ and its rabbitmqctl, run as root (apt-get install rabbitmq-server; rabbitmq-server -detached).',
    );
  }
}

/** The broker-side pids of the connections whose client properties mention `name`. */
export async function connectionPids(name: string): Promise<string[]> {
  const list = await rabbitmqctl('list_connections', '-q', 'pid', 'client_properties');
  return list
    .split('\n')
    .filter((l) => l.includes(`"${name}"`))
    .map((l) => l.split('\t')[0]!)
    .filter((pid) => pid.startsWith('<'));
}

/**
 * Force-closes every connection named `name` (320 CONNECTION_FORCED), waiting up to `waitMs` for one
 * to exist first. Returns how many were closed.
 */
export async function closeConnectionsNamed(
  name: string,
  reason = 'closed by a test',
  waitMs = 10_000,
): Promise<number> {
  const deadline = Date.now() + waitMs;
  let pids = await connectionPids(name);
  while (pids.length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    pids = await connectionPids(name);
  }
  if (pids.length === 0) throw new Error(`no connection named ${name} to close`);
  for (const pid of pids) await rabbitmqctl('close_connection', pid, reason);
  return pids.length;
}

/** Sets the memory high watermark (a fraction of RAM); 0.0000001 raises the memory alarm at once. */
export async function setMemoryWatermark(fraction: number): Promise<void> {
  await rabbitmqctl('set_vm_memory_high_watermark', String(fraction));
}

/** The memory high watermark in force (a fraction of RAM, or `{absolute, N}` as the broker prints it). */
export async function currentWatermark(): Promise<string> {
  const out = (await rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().')).trim();
  return out;
}

/** Sets the watermark back to what {@link currentWatermark} returned. */
export async function restoreWatermark(saved: string): Promise<void> {
  const absolute = /^\{absolute,\s*(\d+)\}$/.exec(saved);
  if (absolute !== null) await rabbitmqctl('set_vm_memory_high_watermark', 'absolute', absolute[1]!);
  else await rabbitmqctl('set_vm_memory_high_watermark', saved);
}

/** Polls `predicate` every 20 ms until it is true or `ms` pass; returns whether it became true. */
export async function eventually(predicate: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
