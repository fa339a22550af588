/**
 * The peer comparison: per scenario and target, each client's rate, CPU per 1,000 messages and peak
 * resident set, its ratio to the best peer, issue 7's targets checked against them, and a chart (SVG).
 *
 * "Peers" are amqplib, rabbitmq-client and @cloudamqp/amqp-client; `raw` is the ceiling (pre-encoded
 * frames) and is compared with, never counted as a peer.
 *
 * @module
 */
import { bytes, fixed, si, table } from './stats.js';
import type { WorkloadResult } from './types.js';

export const PEERS = ['amqplib', 'rabbitmq-client', '@cloudamqp/amqp-client'] as const;
const ORDER = ['rxamqp', ...PEERS, 'raw'];
const SCENARIO_ORDER = ['publish', 'confirm', 'consume', 'latency', 'large', 'memory'];

/** One row of the comparison. */
export interface ComparisonRow {
  readonly scenario: string;
  readonly target: string;
  readonly client: string;
  readonly msgPerSec: number;
  readonly cpuMsPer1k: number;
  readonly maxRss: number;
  /** msg/s over the best peer's (for latency: the best peer's p50 over this one's). */
  readonly vsBestPeer: number | undefined;
  /** CPU ms/1k over the lowest peer's. */
  readonly cpuVsBestPeer: number | undefined;
  readonly p50?: number;
  readonly p99?: number;
  readonly rssGrowthMiB?: number;
}

function targetOf(r: WorkloadResult): string {
  return String(r.params.target ?? '');
}

function isPeer(client: string): boolean {
  return (PEERS as readonly string[]).includes(client);
}

/** The comparison rows of the suite's results (other scenarios, like codec, are left out). */
export function compare(results: readonly WorkloadResult[]): ComparisonRow[] {
  const suite = results.filter((r) => SCENARIO_ORDER.includes(r.scenario) && targetOf(r) !== '');
  const groups = new Map<string, WorkloadResult[]>();
  for (const r of suite) {
    const key = `${r.scenario}\u0000${targetOf(r)}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows: ComparisonRow[] = [];
  for (const group of groups.values()) {
    const peers = group.filter((r) => isPeer(r.client));
    const bestRate = Math.max(0, ...peers.map((r) => r.opsPerSec.median));
    const bestCpu = Math.min(...peers.map((r) => r.cpuMsPer1k.median));
    const bestP50 = Math.min(...peers.map((r) => r.metrics['p50 ms']?.median ?? Number.POSITIVE_INFINITY));
    for (const r of group) {
      const p50 = r.metrics['p50 ms']?.median;
      const p99 = r.metrics['p99 ms']?.median;
      const growth = r.metrics['rss growth MiB']?.median;
      const latency = r.scenario === 'latency';
      rows.push({
        scenario: r.scenario,
        target: targetOf(r),
        client: r.client,
        msgPerSec: r.opsPerSec.median,
        cpuMsPer1k: r.cpuMsPer1k.median,
        maxRss: r.maxRss,
        vsBestPeer:
          peers.length === 0
            ? undefined
            : latency
              ? p50 !== undefined && Number.isFinite(bestP50)
                ? bestP50 / p50
                : undefined
              : bestRate > 0
                ? r.opsPerSec.median / bestRate
                : undefined,
        cpuVsBestPeer:
          peers.length === 0 || !Number.isFinite(bestCpu) ? undefined : r.cpuMsPer1k.median / bestCpu,
        ...(p50 !== undefined ? { p50 } : {}),
        ...(p99 !== undefined ? { p99 } : {}),
        ...(growth !== undefined ? { rssGrowthMiB: growth } : {}),
      });
    }
  }
  const rank = (row: ComparisonRow) =>
    SCENARIO_ORDER.indexOf(row.scenario) * 100 + (row.target === 'real' ? 0 : 50) + ORDER.indexOf(row.client);
  return rows.sort((a, b) => rank(a) - rank(b));
}

/** The comparison as a text table. */
export function comparisonTable(rows: readonly ComparisonRow[]): string {
  const head = [
    'scenario',
    'target',
    'client',
    'msg/s',
    'vs best peer',
    'cpu ms/1k',
    'cpu vs best peer',
    'peak rss',
    'p50/p99 ms',
    'rss growth',
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.target,
    r.client,
    si(r.msgPerSec),
    r.vsBestPeer === undefined ? '' : `${fixed(r.vsBestPeer, 2)}×`,
    fixed(r.cpuMsPer1k, 2),
    r.cpuVsBestPeer === undefined ? '' : `${fixed(r.cpuVsBestPeer, 2)}×`,
    bytes(r.maxRss),
    r.p50 === undefined ? '' : `${fixed(r.p50, 3)} / ${fixed(r.p99 ?? Number.NaN, 3)}`,
    r.rssGrowthMiB === undefined ? '' : `${fixed(r.rssGrowthMiB, 1)} MiB`,
  ]);
  return table([head, ...body]);
}

/** One of issue 7's targets, checked. */
export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

function find(rows: readonly ComparisonRow[], scenario: string, target: string, client: string) {
  return rows.find((r) => r.scenario === scenario && r.target === target && r.client === client);
}

/** Issue 7's targets, against what was measured (undefined `met`: not measured in this run). */
export function checkTargets(rows: readonly ComparisonRow[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ratio = (
    label: string,
    row: ComparisonRow | undefined,
    value: number | undefined,
    goal: number,
    atMost = false,
  ) => {
    checks.push({
      target: label,
      measured: row === undefined || value === undefined ? 'not measured' : `${fixed(value, 2)}×`,
      met: row === undefined || value === undefined ? undefined : atMost ? value <= goal : value >= goal,
    });
  };
  for (const scenario of ['publish', 'confirm', 'consume']) {
    const row = find(rows, scenario, 'null', 'rxamqp');
    ratio(`null broker ${scenario}: ≥ 3× the best peer's msg/s`, row, row?.vsBestPeer, 3);
  }
  const pub = find(rows, 'publish', 'real', 'rxamqp');
  const raw = find(rows, 'publish', 'real', 'raw');
  ratio(
    'real broker publish: ≥ 0.95 of the raw ceiling',
    pub && raw,
    pub !== undefined && raw !== undefined ? pub.msgPerSec / raw.msgPerSec : undefined,
    0.95,
  );
  for (const scenario of ['confirm', 'consume']) {
    const row = find(rows, scenario, 'real', 'rxamqp');
    ratio(`real broker ${scenario}: ≥ 1.3× the best peer's msg/s`, row, row?.vsBestPeer, 1.3);
  }
  for (const row of rows.filter((r) => r.client === 'rxamqp' && r.scenario !== 'memory')) {
    ratio(
      `${row.scenario} @${row.target}: client CPU ≤ 1/4 of the best peer's`,
      row,
      row.cpuVsBestPeer,
      0.25,
      true,
    );
  }
  const lat = find(rows, 'latency', 'real', 'rxamqp');
  checks.push({
    target: 'real broker round trip at defaults: p50 ≤ 0.5 ms, p99 ≤ 2 ms',
    measured:
      lat?.p50 === undefined
        ? 'not measured'
        : `p50 ${fixed(lat.p50, 3)} ms, p99 ${fixed(lat.p99 ?? Number.NaN, 3)} ms`,
    met: lat?.p50 === undefined ? undefined : lat.p50 <= 0.5 && (lat.p99 ?? Number.POSITIVE_INFINITY) <= 2,
  });
  const mem = find(rows, 'memory', 'null', 'rxamqp');
  checks.push({
    target: '1,000,000 publishes of 1 KiB into a blocked broker: RSS growth < 64 MiB',
    measured: mem?.rssGrowthMiB === undefined ? 'not measured' : `${fixed(mem.rssGrowthMiB, 1)} MiB`,
    met: mem?.rssGrowthMiB === undefined ? undefined : mem.rssGrowthMiB < 64,
  });
  return checks;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return table([
    ['target', 'measured', 'met'],
    ...checks.map((c) => [c.target, c.measured, c.met === undefined ? '-' : c.met ? 'yes' : 'NO']),
  ]);
}

const COLORS: Record<string, string> = {
  rxamqp: '#d9480f',
  amqplib: '#1c7ed6',
  'rabbitmq-client': '#37b24d',
  '@cloudamqp/amqp-client': '#ae3ec9',
  raw: '#868e96',
};

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A grouped bar chart (SVG): for each scenario and target with a rate (publish, confirm, consume,
 * large), each client's msg/s relative to the best peer, and below it client CPU per 1,000 messages.
 */
export function chart(rows: readonly ComparisonRow[], title: string): string {
  const groups = [
    ...new Set(
      rows
        .filter((r) => ['publish', 'confirm', 'consume', 'large'].includes(r.scenario))
        .map((r) => `${r.scenario} @${r.target}`),
    ),
  ];
  const clients = ORDER.filter((c) => rows.some((r) => r.client === c));
  const panel = (metric: (r: ComparisonRow) => number, label: string, y0: number, height: number) => {
    const parts: string[] = [];
    const groupWidth = 110;
    const barWidth = Math.floor((groupWidth - 20) / Math.max(1, clients.length));
    parts.push(`<text x="10" y="${y0 - 20}" font-size="13" font-weight="bold">${escapeXml(label)}</text>`);
    groups.forEach((g, gi) => {
      const inGroup = rows.filter((r) => `${r.scenario} @${r.target}` === g);
      const max = Math.max(...inGroup.map(metric), 1e-9);
      const x0 = 60 + gi * groupWidth;
      clients.forEach((c, ci) => {
        const row = inGroup.find((r) => r.client === c);
        if (row === undefined) return;
        const v = metric(row);
        const h = Math.max(1, (v / max) * height);
        const x = x0 + ci * barWidth;
        parts.push(
          `<rect x="${x}" y="${y0 + height - h}" width="${barWidth - 2}" height="${h}" fill="${COLORS[c] ?? '#000'}"><title>${escapeXml(`${c} ${g}: ${label.includes('CPU') ? `${fixed(v, 2)} ms/1k` : `${si(v)} msg/s`}`)}</title></rect>`,
        );
        parts.push(
          `<text x="${x + (barWidth - 2) / 2}" y="${y0 + height - h - 3}" font-size="8" text-anchor="middle">${escapeXml(label.includes('CPU') ? fixed(v, 1) : si(v))}</text>`,
        );
      });
      parts.push(
        `<text x="${x0 + (groupWidth - 20) / 2}" y="${y0 + height + 14}" font-size="10" text-anchor="middle">${escapeXml(g)}</text>`,
      );
    });
    return parts.join('\n');
  };
  const width = 80 + groups.length * 110;
  const legend = clients
    .map(
      (c, i) =>
        `<rect x="${60 + i * 175}" y="34" width="12" height="12" fill="${COLORS[c] ?? '#000'}"/><text x="${76 + i * 175}" y="44" font-size="11">${escapeXml(c)}</text>`,
    )
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(width, 820)}" height="580" font-family="sans-serif" role="img">
<title>${escapeXml(title)}: messages per second and client CPU per 1,000 messages, by scenario and broker</title>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">${escapeXml(title)}</text>
${legend}
${panel((r) => r.msgPerSec, 'messages per second (higher is better; each group scaled to its own maximum)', 100, 170)}
${panel((r) => r.cpuMsPer1k, 'client CPU ms per 1,000 messages (lower is better; each group scaled to its own maximum)', 370, 170)}
</svg>
`;
}
