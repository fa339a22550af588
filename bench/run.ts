/**
 * `npm run bench [-- <scenario>...] [--quick] [--json <path>] [...]`: runs the bench scenarios and
 * reports the median of several rounds per workload. See `bench/README.md`.
 *
 * By default every workload runs in a fresh child process (the same node, the same flags), so that one
 * workload's JIT feedback, heap and GC state do not leak into the next. `--inline` runs them all in
 * this process (handy under a profiler or debugger).
 *
 * @module
 */
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  chart,
  checkTargets as checkIssueTargets,
  compare,
  comparisonTable,
  naturalChart,
  PEERS,
  targetsTable,
} from './lib/compare.js';
import { type MeasureHooks, type MeasureOptions, measure } from './lib/measure.js';
import { bytes, fixed, si, table } from './lib/stats.js';
import {
  BLOCKED_BROKER_ENV,
  MEMORY_BLOCK_AFTER,
  NULL_BROKER_ENV,
  needsNullBroker,
  TARGETS_ENV,
} from './lib/suite-env.js';
import type { Scenario, ScenarioContext, Workload, WorkloadResult } from './lib/types.js';
import { SCENARIOS } from './scenarios.js';

/** The repository root: the nearest folder with a package.json (also from a tsc build in dist/). */
function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..');
  }
}

const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
const RESULTS = join(ROOT, 'bench', 'results');

const HELP = `Usage: npm run bench -- [scenario...] [options]

Scenarios (none = all):
${SCENARIOS.map((s) => `  ${s.name.padEnd(16)} ${s.description}`).join('\n')}

Options:
  --quick             fewer, shorter rounds (a smoke run)
  --json <path>       write the results JSON there (default bench/results/<timestamp>.json)
  --filter <text>     only workloads whose name contains <text> (repeatable)
  --rounds <n>        measured rounds per workload (default 7, quick 3)
  --round-ms <ms>     target duration of a round (default 1000, quick 250)
  --warmup-ms <ms>    warm-up before the rounds (default 1500, quick 400)
  --inline            run every workload in this process instead of one child process each
  --profile           write a CPU profile of each workload's measured rounds (not its warm-up) to
                      bench/results/profiles/<timestamp>/<scenario>-<workload>.cpuprofile
  --target <t>        real, null or real,null (default): the brokers of the peer suite's scenarios
  --from <json>       print the comparison of an earlier run's results and write its charts (with --docs too)
  --docs              also write the chart and the comparison to docs/benchmarks.svg and docs/benchmarks.md
  --check             exit with status 1 when a workload misses its target
  --list              list the scenarios and their workloads, and exit
  -h, --help          this text`;

interface Options extends MeasureOptions {
  readonly quick: boolean;
  readonly json: string | undefined;
  readonly filters: readonly string[];
  readonly inline: boolean;
  readonly check: boolean;
  readonly list: boolean;
  readonly targets: string;
  readonly docs: boolean;
  readonly from: string | undefined;
  readonly scenarios: readonly string[];
  /** Where to write CPU profiles of the measured rounds, when profiling. */
  readonly profileDir: string | undefined;
  /** Child mode: the scenario and workload to run, reporting over IPC. */
  readonly child: { scenario: string; workload: string } | undefined;
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return n;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      filter: { type: 'string', multiple: true },
      rounds: { type: 'string' },
      'round-ms': { type: 'string' },
      'warmup-ms': { type: 'string' },
      inline: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      target: { type: 'string' },
      docs: { type: 'boolean', default: false },
      from: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'profile-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      child: { type: 'string' },
      workload: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const quick = values.quick === true;
  const known = new Set(SCENARIOS.map((s) => s.name));
  for (const name of positionals) {
    if (!known.has(name)) throw new Error(`unknown scenario "${name}"; known: ${[...known].join(', ')}`);
  }
  return {
    quick,
    json: values.json,
    filters: values.filter ?? [],
    inline: values.inline === true,
    check: values.check === true,
    list: values.list === true,
    targets: checkTargets(values.target ?? process.env[TARGETS_ENV] ?? 'real,null'),
    docs: values.docs === true,
    from: values.from,
    scenarios: positionals.length > 0 ? positionals : SCENARIOS.map((s) => s.name),
    profileDir:
      values['profile-dir'] ??
      (values.profile === true ? join(RESULTS, 'profiles', timestamp(new Date())) : undefined),
    rounds: positiveInt(values.rounds, quick ? 3 : 7, '--rounds'),
    roundMs: positiveInt(values['round-ms'], quick ? 250 : 1000, '--round-ms'),
    warmupMs: positiveInt(values['warmup-ms'], quick ? 400 : 1500, '--warmup-ms'),
    child:
      values.child !== undefined && values.workload !== undefined
        ? { scenario: values.child, workload: values.workload }
        : undefined,
  };
}

function checkTargets(value: string): string {
  const parts = value.split(',').map((t) => t.trim());
  for (const t of parts)
    if (t !== 'real' && t !== 'null')
      throw new Error(`--target takes real, null or real,null, got "${value}"`);
  return parts.join(',');
}

/** Starts a null broker in a process of its own (so that its CPU is not the client's); resolves with its URL. */
function startNullBrokerProcess(extra: string[]): Promise<{ url: string; stop(): void }> {
  const entry = join(dirname(fileURLToPath(import.meta.url)), 'null-broker-process.js');
  return new Promise((resolvePromise, reject) => {
    const proc = fork(entry, extra, { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('the null broker did not start within 10 s')), 10_000);
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const line = buffered.split('\n')[0];
      if (line === undefined || !buffered.includes('\n')) return;
      clearTimeout(timer);
      const { port } = JSON.parse(line) as { port: number };
      resolvePromise({ url: `amqp://guest:guest@127.0.0.1:${port}`, stop: () => proc.kill('SIGTERM') });
    });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the null broker exited with code ${code}`));
    });
  });
}

/** A bar like [██████░░░░] 12/40 for the progress lines. */
function bar(done: number, total: number, width = 24): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${done}/${total}`;
}

function context(scenario: string, quick: boolean): ScenarioContext {
  return {
    quick,
    env: process.env,
    log: (message) => console.error(`[${scenario}] ${message}`),
  };
}

async function loadScenario(name: string): Promise<Scenario> {
  const entry = SCENARIOS.find((s) => s.name === name);
  if (entry === undefined) throw new Error(`unknown scenario "${name}"`);
  return entry.load();
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

/** Hooks that record a CPU profile of the measured rounds into `dir`. */
function profiler(dir: string, scenario: string, workload: string): MeasureHooks {
  const session = new Session();
  return {
    async beforeRounds() {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
    },
    async afterRounds() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${scenario}-${workload.replace(/[^\w.-]+/g, '_')}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      console.log(`profile: ${relative(process.cwd(), file)}`);
    },
  };
}

/** Setup, measurement and teardown of one workload in this process. */
async function runWorkload(scenario: string, workload: Workload, options: Options): Promise<WorkloadResult> {
  try {
    await workload.setup?.();
    const hooks =
      options.profileDir !== undefined ? profiler(options.profileDir, scenario, workload.name) : {};
    return await measure(scenario, workload, options, (line) => console.log(line), hooks);
  } finally {
    await workload.teardown?.();
  }
}

/** Child mode: runs one workload and sends its result to the parent. */
async function child(options: Options, target: { scenario: string; workload: string }): Promise<void> {
  const scenario = await loadScenario(target.scenario);
  const workloads = await scenario.workloads(context(scenario.name, options.quick));
  if (!Array.isArray(workloads)) throw new Error(`scenario ${scenario.name} skipped: ${workloads.skip}`);
  const workload = workloads.find((w) => w.name === target.workload);
  if (workload === undefined) throw new Error(`no workload "${target.workload}" in ${scenario.name}`);
  const result = await runWorkload(scenario.name, workload, options);
  await new Promise<void>((done, fail) => {
    process.send!({ type: 'result', result }, (error: Error | null) => (error ? fail(error) : done()));
  });
}

/** Runs one workload in a fresh child process. */
function runIsolated(scenario: string, workload: string, options: Options): Promise<WorkloadResult> {
  const args = [
    '--child',
    scenario,
    '--workload',
    workload,
    '--rounds',
    String(options.rounds),
    '--round-ms',
    String(options.roundMs),
    '--warmup-ms',
    String(options.warmupMs),
    ...(options.quick ? ['--quick'] : []),
    ...(options.profileDir !== undefined ? ['--profile-dir', options.profileDir] : []),
  ];
  return new Promise((resolvePromise, reject) => {
    let result: WorkloadResult | undefined;
    const proc = fork(fileURLToPath(import.meta.url), args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    proc.on('message', (message: { type?: string; result?: WorkloadResult }) => {
      if (message.type === 'result') result = message.result;
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (result !== undefined) resolvePromise(result);
      else reject(new Error(`${scenario}/${workload} exited with ${signal ?? `code ${code}`} and no result`));
    });
  });
}

function gitDescription(): { commit: string; dirty: boolean } | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return undefined;
  }
}

function targetCell(r: WorkloadResult): string {
  if (r.target === undefined) return '';
  const share = r.opsPerSec.median / r.target.opsPerSec;
  return `${r.target.label ?? si(r.target.opsPerSec)} ${r.targetMet ? '✓' : '✗'} ${fixed(share * 100, 0)}%`;
}

function report(results: readonly WorkloadResult[]): string {
  const hasFrames = results.some((r) => r.rates.frames !== undefined);
  const hasBytes = results.some((r) => r.rates.bytes !== undefined);
  const metricNames = [...new Set(results.flatMap((r) => Object.keys(r.metrics)))];
  const head = [
    'scenario',
    'workload',
    'client',
    'median/s',
    'min/s',
    'max/s',
    'target',
    ...(hasFrames ? ['frames/s'] : []),
    ...(hasBytes ? ['bytes/s'] : []),
    ...metricNames,
    'cpu ms/1k',
    'cpu util',
    'alloc B/op',
    'gc %',
    'heap Δ',
    'rss Δ',
  ];
  const rows = results.map((r) => [
    r.scenario,
    r.workload,
    r.client,
    `${si(r.opsPerSec.median)} ${r.unit}`,
    si(r.opsPerSec.min),
    si(r.opsPerSec.max),
    targetCell(r),
    ...(hasFrames ? [r.rates.frames !== undefined ? si(r.rates.frames.median) : ''] : []),
    ...(hasBytes ? [r.rates.bytes !== undefined ? bytes(r.rates.bytes.median) : ''] : []),
    ...metricNames.map((name) => (r.metrics[name] !== undefined ? fixed(r.metrics[name].median, 3) : '')),
    fixed(r.cpuMsPer1k.median, 3),
    fixed(r.cpuUtilization.median, 2),
    fixed(r.allocBytesPerOp.median, 0),
    fixed(r.gcShare.median * 100, 1),
    bytes(r.heapDelta, true),
    bytes(r.rssDelta, true),
  ]);
  return table([head, ...rows]);
}

/** Writes the chart next to the results JSON and, with `docs`, docs/benchmarks.svg and docs/benchmarks.md. */
function writeCharts(
  path: string,
  meta: { startedAt: string; cpu: string; cores: number; node: string; git: { commit: string } | undefined },
  quick: boolean,
  rows: ReturnType<typeof compare>,
  checks: ReturnType<typeof checkIssueTargets>,
  docs: boolean,
): void {
  const title = `rxamqp vs peers, ${meta.cores} cores, node ${meta.node}, ${meta.startedAt.slice(0, 10)}${quick ? ' (quick)' : ''}`;
  const svgPath = path.replace(/\.json$/, '.svg');
  writeFileSync(svgPath, chart(rows, title));
  console.log(`chart: ${relative(process.cwd(), svgPath)}`);
  // Issue 14's scenarios (many bars per group) get a chart of their own.
  const natural = naturalChart(rows, title);
  if (natural !== undefined) {
    const naturalPath = path.replace(/\.json$/, '-natural.svg');
    writeFileSync(naturalPath, natural);
    console.log(`chart: ${relative(process.cwd(), naturalPath)}`);
  }
  if (!docs) return;
  writeFileSync(join(ROOT, 'docs', 'benchmarks.svg'), chart(rows, title));
  if (natural !== undefined) writeFileSync(join(ROOT, 'docs', 'benchmarks-natural.svg'), natural);
  writeFileSync(
    join(ROOT, 'docs', 'benchmarks.md'),
    `# Benchmarks\n\nMeasured with \`npm run bench${quick ? ' -- --quick' : ''}\` on ${meta.startedAt} ` +
      `(${meta.cpu}, ${meta.cores} cores, node ${meta.node}, commit ${meta.git?.commit.slice(0, 10) ?? 'unknown'}), ` +
      'RabbitMQ and the clients on the same machine. Medians of the rounds; peers at their defaults. ' +
      'See [bench/README.md](../bench/README.md) for the method.\n\n' +
      `![rxamqp vs peers](benchmarks.svg)\n\n` +
      (natural !== undefined
        ? '## The code users write (issue 14)\n\n![rxamqp vs peers, as users write it](benchmarks-natural.svg)\n\n'
        : '') +
      `## Comparison\n\n\`\`\`\n${comparisonTable(rows)}\n\`\`\`\n\n` +
      `## Targets (issues 7 and 14)\n\n\`\`\`\n${targetsTable(checks)}\n\`\`\`\n`,
  );
  console.log(
    `docs: docs/benchmarks.svg${natural !== undefined ? ', docs/benchmarks-natural.svg' : ''}, docs/benchmarks.md`,
  );
}

/** `--from <json>`: the comparison, targets and charts of an earlier run, without running anything. */
function fromResults(file: string, docs: boolean): number {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    meta: Parameters<typeof writeCharts>[1];
    options: { quick: boolean };
    results: WorkloadResult[];
  };
  const rows = compare(saved.results);
  const checks = checkIssueTargets(rows);
  console.log(comparisonTable(rows));
  console.log(`\n${targetsTable(checks)}`);
  writeCharts(resolve(file), saved.meta, saved.options.quick, rows, checks, docs);
  return 0;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options === undefined) return 0;
  if (options.from !== undefined) return fromResults(options.from, options.docs);
  if (options.child !== undefined) {
    await child(options, options.child);
    // A client whose socket the broker stopped reading (the memory scenario) can keep handles open:
    // the result is sent, so end the process rather than wait for them.
    process.exit(0);
  }

  const started = new Date();
  const loadAtStart = loadavg();
  const results: WorkloadResult[] = [];
  const skipped: { scenario: string; reason: string }[] = [];
  const failures: { scenario: string; workload: string; error: string }[] = [];
  const mode = options.inline ? 'inline' : 'one process per workload';
  if (!options.list) {
    console.log(
      `rxamqp bench: ${options.scenarios.join(', ')}; ${options.rounds} rounds of ~${options.roundMs} ms after ` +
        `${options.warmupMs} ms warm-up; ${mode}; node ${process.version} on ${cpus()[0]?.model ?? arch()}`,
    );
  }

  process.env[TARGETS_ENV] = options.targets;
  const brokers: { stop(): void }[] = [];
  if (
    !options.list &&
    options.child === undefined &&
    options.targets.includes('null') &&
    options.scenarios.some(needsNullBroker)
  ) {
    const plain = await startNullBrokerProcess([]);
    const blocked = await startNullBrokerProcess(['--block-after', String(MEMORY_BLOCK_AFTER)]);
    brokers.push(plain, blocked);
    process.env[NULL_BROKER_ENV] = plain.url;
    process.env[BLOCKED_BROKER_ENV] = blocked.url;
  }
  const stopBrokers = () => {
    for (const b of brokers) b.stop();
  };
  process.once('exit', stopBrokers);

  const plan: { name: string; scenario: Scenario; workloads: Workload[] }[] = [];
  for (const name of options.scenarios) {
    const scenario = await loadScenario(name);
    const workloads = await scenario.workloads(context(name, options.quick));
    if (!Array.isArray(workloads)) {
      console.log(`${name}: skipped (${workloads.skip})`);
      skipped.push({ scenario: name, reason: workloads.skip });
      continue;
    }
    const selected = workloads.filter(
      (w) => options.filters.length === 0 || options.filters.some((f) => w.name.includes(f)),
    );
    if (options.list) {
      console.log(`${name}: ${scenario.description}`);
      for (const w of workloads) console.log(`  ${w.name}${w.client !== undefined ? ` [${w.client}]` : ''}`);
      continue;
    }
    plan.push({ name, scenario, workloads: selected });
  }
  const total = plan.reduce((n, p) => n + p.workloads.length, 0);
  let done = 0;
  for (const { name, workloads: selected } of plan) {
    for (const workload of selected) {
      console.log(`${bar(done, total)}  ${name}/${workload.name}`);
      done++;
      try {
        results.push(
          options.inline
            ? await runWorkload(name, workload, options)
            : await runIsolated(name, workload.name, options),
        );
      } catch (e) {
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
        console.error(`${name}/${workload.name} failed: ${error}`);
        failures.push({ scenario: name, workload: workload.name, error });
      }
    }
  }
  stopBrokers();
  if (options.list) return 0;
  console.log(bar(done, total));

  console.log(`\n${report(results)}`);
  const rows = compare(results);
  const checks = checkIssueTargets(rows);
  if (rows.length > 0) {
    console.log(
      `\nComparison (median of the rounds; ratios against the best of ${PEERS.join(', ')}, ` +
        'among their rows of the counterpart variant where there is one):\n',
    );
    console.log(comparisonTable(rows));
    console.log(`\nTargets (issues 7 and 14):\n\n${targetsTable(checks)}`);
  }
  const contended = results.filter((r) => r.cpuBound && r.cpuUtilization.median < 0.9);
  if (contended.length > 0) {
    console.log(
      `\nnote: cpu util under 0.9 for ${contended.map((r) => r.workload).join(', ')}: the process was waiting or ` +
        `the machine busy (load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}); ` +
        'cpu ms/1k is the steadier figure then.',
    );
  }
  console.log(
    '\nmedian/min/max: operations per second over the rounds; cpu ms/1k: process CPU (user + system, all ' +
      'threads) per 1,000 operations; cpu util: CPU time / wall time; alloc: JS heap bytes allocated per ' +
      'operation; gc %: GC pause time / wall time; heap Δ: retained heap after vs before the rounds (full GC ' +
      'both ends); rss Δ: resident set after vs before the rounds.',
  );

  const out = {
    meta: {
      startedAt: started.toISOString(),
      durationMs: Date.now() - started.getTime(),
      node: process.version,
      v8: process.versions.v8,
      platform: `${platform()} ${release()} ${arch()}`,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      totalMemory: totalmem(),
      loadAverageAtStart: loadAtStart,
      git: gitDescription(),
      execArgv: process.execArgv,
      nodeOptions: process.env.NODE_OPTIONS ?? '',
    },
    options: {
      scenarios: options.scenarios,
      quick: options.quick,
      rounds: options.rounds,
      roundMs: options.roundMs,
      warmupMs: options.warmupMs,
      filters: options.filters,
      isolated: !options.inline,
    },
    results,
    comparison: rows,
    targets: checks,
    skipped,
    failures,
  };
  const path =
    options.json !== undefined ? resolve(options.json) : join(RESULTS, `${timestamp(started)}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nresults: ${relative(process.cwd(), path)}`);
  if (rows.length > 0) writeCharts(path, out.meta, options.quick, rows, checks, options.docs);

  const missed = results.filter((r) => r.targetMet === false);
  if (failures.length > 0) return 1;
  if (options.check && missed.length > 0) {
    console.log(`targets missed: ${missed.map((r) => `${r.scenario}/${r.workload}`).join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  },
);
