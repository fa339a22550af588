/**
 * A RabbitMQ cluster on this machine, for the cluster suite (`test/cluster/`) and for trying things by
 * hand (`scripts/cluster.ts start|stop|status`). It starts `size` nodes (3 by default) beside the
 * default broker, each with a node name, AMQP port, distribution port, data directory, log directory,
 * config file and enabled-plugins file of its own, joins them with `rabbitmqctl join_cluster`, waits
 * until the cluster is formed, and stops and removes everything afterwards. The default broker
 * (`rabbit@localhost` on 5672) and its files are never touched: the nodes get a config file of their
 * own (the system one pins the listener to 5672), skip `/etc/rabbitmq/rabbitmq-env.conf`
 * (`RABBITMQ_CONF_ENV_FILE`), and use an Erlang cookie of their own (`HOME` points into the cluster's
 * directory), so that they cannot even talk to the default node.
 *
 * Everything lives under one directory per port range (`/tmp/rxamqp-cluster-5681` by default), so a
 * run that died half-way is cleaned up by the next one: {@link startCluster} first stops the nodes a
 * stale directory names and removes it.
 *
 * @example
 * ```ts
 * let cluster: Cluster;
 * beforeAll(async () => { cluster = await startCluster(); }, 180_000);
 * afterAll(() => cluster?.stop(), 60_000);
 * // connect(cluster.url, { hosts: cluster.hosts, recovery: true })
 * ```
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where the Debian/Ubuntu package (and RabbitMQ's generic unix package, once linked) puts the scripts. */
const SCRIPTS = process.env.RABBITMQ_SCRIPTS_DIR ?? '/usr/lib/rabbitmq/bin';

/** What the suite needs, said whenever the cluster cannot start. */
export const CLUSTER_REQUIREMENTS =
  'The cluster suite starts 3 RabbitMQ nodes on this machine: it needs the RabbitMQ server scripts in ' +
  `${SCRIPTS} (apt-get install rabbitmq-server, or set RABBITMQ_SCRIPTS_DIR), Erlang, an epmd it can ` +
  'register with on 127.0.0.1 (rabbitmq-server starts one), free ports 5681-5683 and 25681-25683 (or ' +
  'RXAMQP_CLUSTER_PORT=<first AMQP port>), and a writable /tmp (or RXAMQP_CLUSTER_DIR).';

/** One node of the cluster. */
export interface ClusterNode {
  /** The Erlang node name, e.g. `rxamqp-c1@localhost`. */
  readonly name: string;
  /** The AMQP port (on 127.0.0.1). */
  readonly port: number;
  /** `127.0.0.1:port`, as `state$` and `conn.host` report it. */
  readonly host: string;
  /** The Erlang distribution port. */
  readonly distPort: number;
  /** The node's directory (config, data, logs). */
  readonly dir: string;
}

/** A running cluster: see {@link startCluster}. */
export interface Cluster {
  readonly nodes: readonly ClusterNode[];
  /** The AMQP URL of the first node (guest/guest); pass {@link Cluster.hosts} to reach all of them. */
  readonly url: string;
  /** `127.0.0.1:port` of every node, in order: the `hosts` option of a client. */
  readonly hosts: readonly string[];
  /** The cluster's directory. */
  readonly dir: string;
  /** The node whose AMQP address is `host` (`127.0.0.1:port`). */
  nodeAt(host: string | undefined): ClusterNode | undefined;
  /** Runs `rabbitmqctl -n NODE args...` and returns its standard output. */
  ctl(node: ClusterNode, ...args: string[]): Promise<string>;
  /** `rabbitmqctl -n NODE stop_app`: the node stays in the cluster, its connections are closed. */
  stopApp(node: ClusterNode): Promise<void>;
  /** `rabbitmqctl -n NODE start_app`, then waits until the node runs and accepts AMQP connections. */
  startApp(node: ClusterNode): Promise<void>;
  /** The node names the cluster reports as running, asked of `via`. */
  runningNodes(via?: ClusterNode): Promise<string[]>;
  /** Stops every node and removes the cluster's directory. Idempotent, never throws. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of nodes. Default 3. */
  readonly size?: number;
  /** AMQP port of the first node; the others follow (distribution ports: +20000). Default 5681. */
  readonly port?: number;
  /** Parent directory of the cluster's directory. Default `/tmp`. */
  readonly baseDir?: string;
  /** Longest wait for the cluster to form, in ms. Default 150000. */
  readonly timeout?: number;
  /**
   * Leave the nodes running when this process exits without {@link Cluster.stop} (the CLI script does,
   * and `stopCluster()` stops them later). Default false: the nodes are killed on exit.
   */
  readonly keepOnExit?: boolean;
  /** Progress lines (`console.log` by default when `RXAMQP_CLUSTER_VERBOSE` is set). */
  readonly log?: (line: string) => void;
}

/**
 * Starts a cluster of `size` nodes and waits until it is formed. Fails loudly (with
 * {@link CLUSTER_REQUIREMENTS} and the end of the failing node's log) when it cannot, after stopping
 * what it started.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const first = options.port ?? Number(process.env.RXAMQP_CLUSTER_PORT ?? 5681);
  const dir = join(options.baseDir ?? process.env.RXAMQP_CLUSTER_DIR ?? '/tmp', `rxamqp-cluster-${first}`);
  const timeout = options.timeout ?? 150_000;
  const log =
    options.log ??
    (process.env.RXAMQP_CLUSTER_VERBOSE ? (l: string) => console.log(`[cluster] ${l}`) : () => {});
  const deadline = Date.now() + timeout;

  if (!existsSync(join(SCRIPTS, 'rabbitmq-server')) || !existsSync(join(SCRIPTS, 'rabbitmqctl'))) {
    throw new Error(`cannot start the cluster: no rabbitmq-server in ${SCRIPTS}. ${CLUSTER_REQUIREMENTS}`);
  }
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < size; i++) {
    const port = first + i;
    nodes.push({
      name: `rxamqp-c${i + 1}-${first}@localhost`,
      port,
      host: `127.0.0.1:${port}`,
      distPort: port + 20_000,
      dir: join(dir, `node${i + 1}`),
    });
  }

  const release = await lock(`${dir}.lock`, Math.min(120_000, timeout), log);
  try {
    await removeStale(dir, nodes, log);
  } catch (e) {
    release();
    throw e;
  }
  mkdirSync(dir, { recursive: true });
  // A cookie of its own: the cluster cannot reach the default node, nor it the cluster.
  writeFileSync(join(dir, '.erlang.cookie'), randomBytes(20).toString('hex').toUpperCase(), { mode: 0o400 });
  writeFileSync(
    join(dir, 'rabbitmq-env.conf'),
    '# rxamqp cluster: nothing from /etc/rabbitmq/rabbitmq-env.conf\n',
  );

  const env = (node?: ClusterNode): NodeJS.ProcessEnv => {
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: dir,
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      // A VM that fails to start writes its crash dump here, never into the caller's directory.
      ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
    };
    if (node === undefined) return base;
    return {
      ...base,
      RABBITMQ_NODENAME: node.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(node.port),
      RABBITMQ_DIST_PORT: String(node.distPort),
      RABBITMQ_CONFIG_FILE: join(node.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(node.dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(node.dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(node.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(node.dir, 'log'),
      RABBITMQ_PID_FILE: join(node.dir, 'beam.pid'),
      // The distribution listens on the loopback only, as the default node's does.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  };

  const ctl = async (node: ClusterNode, ...args: string[]): Promise<string> => {
    try {
      const { stdout } = await run(join(SCRIPTS, 'rabbitmqctl'), ['-n', node.name, ...args], {
        env: env(),
        cwd: dir,
        encoding: 'utf8',
        timeout: 90_000,
      });
      return stdout;
    } catch (e) {
      const err = e as Error & { stderr?: string; stdout?: string };
      throw new Error(
        `rabbitmqctl -n ${node.name} ${args.join(' ')} failed: ${err.message.split('\n')[0]}\n${err.stdout ?? ''}${err.stderr ?? ''}`,
      );
    }
  };

  const runningNodes = async (via: ClusterNode = nodes[0]!): Promise<string[]> => {
    const out = await ctl(via, 'cluster_status', '--formatter', 'json');
    const status = JSON.parse(out) as { running_nodes?: string[] };
    return status.running_nodes ?? [];
  };

  const children: ChildProcess[] = [];
  let stopped = false;
  // A process that exits without stop() (a test runner giving up) still takes the nodes with it; one
  // that is killed leaves them to the next startCluster, which removes what the directory names.
  const onExit = () => {
    for (const child of children) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    killByName(nodes);
    rmSync(dir, { recursive: true, force: true });
    release();
  };
  if (options.keepOnExit !== true) process.once('exit', onExit);
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    await Promise.all(
      nodes.map(async (node) => {
        await ctl(node, 'stop').catch(() => undefined);
        killPidFile(node);
      }),
    );
    for (const child of children) {
      try {
        // detached: the script and the VM it starts are one process group.
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    killByName(nodes);
    if (process.env.RXAMQP_CLUSTER_KEEP_DIR === undefined) rmSync(dir, { recursive: true, force: true });
    if (options.keepOnExit !== true) release();
    log(`stopped and removed ${dir}`);
  };

  const cluster: Cluster = {
    nodes,
    url: `amqp://guest:guest@127.0.0.1:${first}`,
    hosts: nodes.map((n) => n.host),
    dir,
    nodeAt: (host) => nodes.find((n) => n.host === host),
    ctl,
    stopApp: async (node) => {
      await ctl(node, 'stop_app');
    },
    startApp: async (node) => {
      await ctl(node, 'start_app');
      await ctl(node, 'await_startup', '--timeout', '60');
      await waitForPort(node.port, 30_000);
    },
    runningNodes,
    stop,
  };

  try {
    for (const node of nodes) {
      mkdirSync(join(node.dir, 'log'), { recursive: true });
      writeFileSync(
        join(node.dir, 'rabbitmq.conf'),
        [
          `listeners.tcp.default = 127.0.0.1:${node.port}`,
          'loopback_users = none',
          'disk_free_limit.absolute = 50MB',
          'log.console = false',
          'log.file.level = info',
          // The CLI and the nodes agree on the node name's host: localhost, short names.
          '',
        ].join('\n'),
      );
      writeFileSync(join(node.dir, 'enabled_plugins'), '[].\n');
      writeFileSync(join(node.dir, 'advanced.config'), '[].\n');
      const out = openSync(join(node.dir, 'log', 'server.out'), 'a');
      const child = spawn(join(SCRIPTS, 'rabbitmq-server'), [], {
        env: env(node),
        cwd: dir,
        detached: true,
        stdio: ['ignore', out, out],
      });
      child.on('error', () => undefined);
      child.unref();
      children.push(child);
      log(`starting ${node.name} on ${node.host}`);
    }
    for (const [i, node] of nodes.entries()) {
      // await_startup fails at once while the VM has not registered with epmd yet: try again.
      for (;;) {
        const left = Math.max(5, Math.floor((deadline - Date.now()) / 1000));
        const error = await ctl(node, 'await_startup', '--timeout', String(left)).then(
          () => undefined,
          (e: Error) => e,
        );
        if (error === undefined) break;
        const child = children[i]!;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(
            `${node.name} did not start${child.exitCode === null ? '' : ` (rabbitmq-server exited with ${child.exitCode})`}: ${error.message}\n${tail(node)}`,
          );
        }
        await sleep(500);
      }
      log(`${node.name} is up`);
    }
    const leader = nodes[0]!;
    for (const node of nodes.slice(1)) {
      await ctl(node, 'stop_app');
      await ctl(node, 'join_cluster', leader.name);
      await ctl(node, 'start_app');
      log(`${node.name} joined ${leader.name}`);
    }
    for (;;) {
      const running = await runningNodes().catch((): string[] => []);
      if (nodes.every((n) => running.includes(n.name))) break;
      if (Date.now() > deadline)
        throw new Error(`the cluster did not form: running nodes ${running.join(', ')}`);
      await sleep(200);
    }
    for (const node of nodes) await waitForPort(node.port, Math.max(1000, deadline - Date.now()));
    log(`formed: ${nodes.map((n) => n.name).join(', ')}`);
    return cluster;
  } catch (e) {
    await stop();
    throw new Error(`cannot start the cluster: ${(e as Error).message}\n${CLUSTER_REQUIREMENTS}`);
  }
}

/**
 * Stops the nodes of the cluster {@link startCluster} would start with these options, and removes its
 * directory: for a cluster started by hand (`scripts/cluster.ts stop`) or left by a run that died.
 */
export async function stopCluster(
  options: Pick<ClusterOptions, 'size' | 'port' | 'baseDir'> = {},
): Promise<void> {
  const size = options.size ?? 3;
  const first = options.port ?? Number(process.env.RXAMQP_CLUSTER_PORT ?? 5681);
  const dir = join(options.baseDir ?? process.env.RXAMQP_CLUSTER_DIR ?? '/tmp', `rxamqp-cluster-${first}`);
  const nodes = Array.from({ length: size }, (_, i) => ({
    name: `rxamqp-c${i + 1}-${first}@localhost`,
    port: first + i,
    host: `127.0.0.1:${first + i}`,
    distPort: first + i + 20_000,
    dir: join(dir, `node${i + 1}`),
  }));
  await removeStale(dir, nodes, () => {});
}

/** The last lines of a node's log, for error messages. */
function tail(node: ClusterNode, lines = 30): string {
  const parts: string[] = [];
  for (const file of [join(node.dir, 'log', 'server.out'), join(node.dir, 'log', `${node.name}.log`)]) {
    try {
      const text = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      if (text !== '') parts.push(`--- ${file}\n${text}`);
    } catch {
      // no such log
    }
  }
  return parts.join('\n');
}

/** Kills the node's VM by its pid file, if it still runs. */
function killPidFile(node: ClusterNode): void {
  try {
    const pid = Number(readFileSync(join(node.dir, 'beam.pid'), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGKILL');
  } catch {
    // no pid file, or the VM is gone
  }
}

/**
 * Kills the VMs of these nodes found by their node name in their environment (Linux `/proc`): the last
 * resort for a node whose cookie went with its directory.
 */
function killByName(nodes: readonly ClusterNode[]): void {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  const names = nodes.map((n) => n.name.split('@')[0]!);
  for (const pid of pids) {
    try {
      // RabbitMQ 3.10 hands the node name to the VM in its environment, not on the command line.
      const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const name = vars.find((v) => v.startsWith('RABBITMQ_NODENAME='))?.slice('RABBITMQ_NODENAME='.length);
      if (name !== undefined && names.includes(name.split('@')[0]!)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone, or not ours to read
    }
  }
}

/** A previous run that died left its directory: stop the nodes it names, then remove it. */
async function removeStale(
  dir: string,
  nodes: readonly ClusterNode[],
  log: (l: string) => void,
): Promise<void> {
  killByName(nodes.filter(() => !existsSync(dir)));
  if (!existsSync(dir)) return;
  log(`removing a stale cluster directory ${dir}`);
  for (const node of nodes) {
    await run(join(SCRIPTS, 'rabbitmqctl'), ['-n', node.name, 'stop'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
        ERL_EPMD_ADDRESS: '127.0.0.1',
        ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
      },
      cwd: dir,
      timeout: 30_000,
    }).catch(() => undefined);
    killPidFile(node);
  }
  killByName(nodes);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Takes the lock of a port range (a file holding the owner's pid, created exclusively), so that a
 * second run on the same ports waits for the first instead of removing its nodes as stale. A lock
 * whose owner is gone is taken over. Returns the release function.
 */
async function lock(file: string, ms: number, log: (l: string) => void): Promise<() => void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) rmSync(file, { force: true });
        } catch {
          // gone already
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || !alive(owner)) {
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `another cluster run (pid ${owner}) holds ${file}; wait for it, or set RXAMQP_CLUSTER_PORT to use other ports`,
      );
    }
    log(`waiting for pid ${owner}, which holds ${file}`);
    await sleep(1000);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
async function waitForPort(port: number, ms: number): Promise<void> {
  const { createConnection } = await import('node:net');
  const deadline = Date.now() + ms;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing answers on 127.0.0.1:${port} after ${ms} ms`);
    await sleep(100);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
