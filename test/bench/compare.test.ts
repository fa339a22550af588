/**
 * The peer comparison (`bench/lib/compare.ts`) on hand-made results: rows carry the variant, the old
 * scenarios compare as before, a variant is compared with its counterpart among the peers (streaming
 * operators with the peers' `stream`, `await` with `await`, falling back to every peer), rows are
 * ordered, issue 14's targets are checked, and the second chart is drawn only for its scenarios.
 */
import {
  type ComparisonRow,
  checkTargets,
  compare,
  comparisonTable,
  counterpartOf,
  naturalChart,
} from '../../bench/lib/compare.js';
import type { Stat, WorkloadResult } from '../../bench/lib/types.js';

const s = (median: number): Stat => ({ median, min: median, max: median });

/** A result with the figures the comparison reads. */
function result(
  scenario: string,
  client: string,
  msgPerSec: number,
  cpuMsPer1k: number,
  opts: { target?: string; variant?: string; metrics?: Record<string, number> } = {},
): WorkloadResult {
  const target = opts.target ?? 'null';
  return {
    scenario,
    workload: `${client}${opts.variant !== undefined ? ` ${opts.variant}` : ''} @${target}`,
    client,
    unit: 'message',
    params: { target, ...(opts.variant !== undefined ? { variant: opts.variant } : {}) },
    cpuBound: false,
    rounds: 1,
    opsPerRound: 1000,
    opsPerSec: s(msgPerSec),
    rates: {},
    metrics: Object.fromEntries(Object.entries(opts.metrics ?? {}).map(([k, v]) => [k, s(v)])),
    cpuMsPer1k: s(cpuMsPer1k),
    cpuUtilization: s(1),
    gcShare: s(0),
    allocBytesPerOp: s(0),
    heapDelta: 0,
    rssDelta: 0,
    rssPeak: 0,
    maxRss: 50 * 1024 * 1024,
    samples: [],
  };
}

function row(rows: readonly ComparisonRow[], scenario: string, client: string, variant = '') {
  const found = rows.find((r) => r.scenario === scenario && r.client === client && r.variant === variant);
  if (found === undefined) throw new Error(`no row ${scenario} ${client} ${variant}`);
  return found;
}

/** natural-publish on the null broker: rxamqp's three idioms, the peers' stream and await. */
const naturalPublish = [
  result('natural-publish', 'rxamqp', 400_000, 2, { variant: 'mergeMap' }),
  result('natural-publish', 'rxamqp', 90_000, 6, { variant: 'concatMap' }),
  result('natural-publish', 'rxamqp', 60_000, 8, { variant: 'await' }),
  result('natural-publish', 'amqplib', 100_000, 5, { variant: 'stream' }),
  result('natural-publish', 'rabbitmq-client', 50_000, 10, { variant: 'stream' }),
  result('natural-publish', 'rabbitmq-client', 30_000, 12, { variant: 'await' }),
  result('natural-publish', '@cloudamqp/amqp-client', 80_000, 6, { variant: 'stream' }),
  result('natural-publish', '@cloudamqp/amqp-client', 40_000, 9, { variant: 'await' }),
];

describe('bench comparison', () => {
  it('maps streaming operators to the peers’ stream, anything else to itself', () => {
    expect(counterpartOf('mergeMap')).toBe('stream');
    expect(counterpartOf('concatMap')).toBe('stream');
    expect(counterpartOf('await')).toBe('await');
    expect(counterpartOf('publish')).toBe('publish');
    expect(counterpartOf('')).toBe('');
    // On a confirm channel concatMap waits for each confirm: a round trip per message, like await.
    expect(counterpartOf('concatMap', 'natural-confirm')).toBe('await');
    expect(counterpartOf('concatMap', 'natural-publish')).toBe('stream');
    expect(counterpartOf('mergeMap', 'natural-confirm')).toBe('stream');
  });

  it('compares the old scenarios as before, with an empty variant', () => {
    const rows = compare([
      result('publish', 'rxamqp', 300_000, 2),
      result('publish', 'amqplib', 100_000, 8),
      result('publish', 'rabbitmq-client', 50_000, 4),
      result('publish', 'raw', 600_000, 1),
    ]);
    expect(rows.map((r) => r.client)).toEqual(['rxamqp', 'amqplib', 'rabbitmq-client', 'raw']);
    expect(rows.every((r) => r.variant === '')).toBe(true);
    expect(row(rows, 'publish', 'rxamqp').vsBestPeer).toBeCloseTo(3);
    expect(row(rows, 'publish', 'rxamqp').cpuVsBestPeer).toBeCloseTo(0.5);
    expect(row(rows, 'publish', 'raw').vsBestPeer).toBeCloseTo(6);
  });

  it('compares each variant with the best peer of its counterpart variant', () => {
    const rows = compare(naturalPublish);
    // Streaming operators against the best peer stream (amqplib, 100k/s; lowest CPU 5).
    expect(row(rows, 'natural-publish', 'rxamqp', 'mergeMap').vsBestPeer).toBeCloseTo(4);
    expect(row(rows, 'natural-publish', 'rxamqp', 'mergeMap').cpuVsBestPeer).toBeCloseTo(0.4);
    expect(row(rows, 'natural-publish', 'rxamqp', 'concatMap').vsBestPeer).toBeCloseTo(0.9);
    // await against the best peer await (@cloudamqp, 40k/s; lowest CPU 9), not the best stream.
    expect(row(rows, 'natural-publish', 'rxamqp', 'await').vsBestPeer).toBeCloseTo(1.5);
    expect(row(rows, 'natural-publish', 'rxamqp', 'await').cpuVsBestPeer).toBeCloseTo(8 / 9);
    // Peers against their own variant's best.
    expect(row(rows, 'natural-publish', 'rabbitmq-client', 'await').vsBestPeer).toBeCloseTo(0.75);
    expect(row(rows, 'natural-publish', 'rabbitmq-client', 'stream').vsBestPeer).toBeCloseTo(0.5);
  });

  it('falls back to every peer when no peer has the counterpart variant', () => {
    const rows = compare([
      result('natural-consume', 'rxamqp', 90_000, 3, { variant: 'mergeMap' }),
      result('natural-consume', 'amqplib', 30_000, 6, { variant: 'async' }),
      result('natural-consume', '@cloudamqp/amqp-client', 45_000, 4, { variant: 'async' }),
    ]);
    expect(row(rows, 'natural-consume', 'rxamqp', 'mergeMap').vsBestPeer).toBeCloseTo(2);
    expect(row(rows, 'natural-consume', 'rxamqp', 'mergeMap').cpuVsBestPeer).toBeCloseTo(0.75);
  });

  it('keeps targets apart and orders scenarios, targets, clients and variants', () => {
    const rows = compare([
      result('cold', 'amqplib', 10_000, 40, { variant: 'consume' }),
      result('cold', 'rxamqp', 50_000, 10, { variant: 'publish' }),
      result('rpc', 'rxamqp', 1000, 1, { variant: 'await' }),
      ...naturalPublish,
      result('natural-publish', 'rxamqp', 20_000, 30, { target: 'real', variant: 'await' }),
      result('natural-publish', 'amqplib', 25_000, 30, { target: 'real', variant: 'stream' }),
      result('publish', 'rxamqp', 1, 1),
      result('codec', 'rxamqp', 1, 1),
    ]);
    expect(rows.map((r) => `${r.scenario} ${r.target} ${r.client} ${r.variant}`)).toEqual([
      'publish null rxamqp ',
      'natural-publish real rxamqp await',
      'natural-publish real amqplib stream',
      'natural-publish null rxamqp mergeMap',
      'natural-publish null rxamqp concatMap',
      'natural-publish null rxamqp await',
      'natural-publish null amqplib stream',
      'natural-publish null rabbitmq-client stream',
      'natural-publish null rabbitmq-client await',
      'natural-publish null @cloudamqp/amqp-client stream',
      'natural-publish null @cloudamqp/amqp-client await',
      'cold null rxamqp publish',
      'cold null amqplib consume',
      'rpc null rxamqp await',
    ]);
    // On the real broker no peer has await: rxamqp's await falls back to the best peer there.
    expect(row(rows, 'natural-publish', 'rxamqp', 'await').target).toBe('real');
    expect(rows.find((r) => r.target === 'real' && r.client === 'rxamqp')?.vsBestPeer).toBeCloseTo(0.8);
    // The table has a variant column.
    expect(comparisonTable(rows).split('\n')[0]).toMatch(/client\s+variant\s+msg\/s/);
  });

  describe("issue 14's targets", () => {
    const met = (checks: ReturnType<typeof checkTargets>, label: string) => {
      const found = checks.find((c) => c.issue === 14 && c.target.includes(label));
      if (found === undefined) throw new Error(`no check ${label}`);
      return found;
    };

    it('are not listed when the run has none of their scenarios', () => {
      const checks = checkTargets(compare([result('publish', 'rxamqp', 1, 1)]));
      expect(checks.some((c) => c.issue === 14)).toBe(false);
      expect(checks.some((c) => c.issue === 7)).toBe(true);
    });

    it('check the streaming variants against the best peer stream and rxamqp’s own publish', () => {
      const checks = checkTargets(
        compare([
          ...naturalPublish,
          result('publish', 'rxamqp', 500_000, 1.5),
          result('publish', 'amqplib', 100_000, 5),
        ]),
      );
      expect(met(checks, 'natural-publish mergeMap: ≥ 3×')).toMatchObject({ measured: '4.00×', met: true });
      expect(met(checks, 'natural-publish concatMap: ≥ 3×')).toMatchObject({ met: false });
      // mergeMap 2 ms/1k against publish's 1.5: 1.33×, within 2×; concatMap's 6: 4×.
      expect(met(checks, "natural-publish mergeMap: CPU/msg ≤ 2× rxamqp's own publish")).toMatchObject({
        measured: '1.33×',
        met: true,
      });
      expect(met(checks, "natural-publish concatMap: CPU/msg ≤ 2× rxamqp's own publish").met).toBe(false);
      expect(met(checks, 'natural-publish await: msg/s ≥')).toMatchObject({ measured: '1.50×', met: true });
      expect(met(checks, 'natural-publish await: CPU/msg ≤')).toMatchObject({ met: true });
      // The old CPU ≤ 1/4 check stays on issue 7's scenarios.
      expect(checks.filter((c) => c.issue === 7 && c.target.includes('natural'))).toEqual([]);
    });

    it('skip the CPU check without rxamqp’s own scenario in the run', () => {
      const checks = checkTargets(compare(naturalPublish));
      const cpu = met(checks, "natural-publish mergeMap: CPU/msg ≤ 2× rxamqp's own publish");
      expect(cpu.met).toBeUndefined();
      expect(cpu.measured).toMatch(/no publish row/);
    });

    it('hold concatMap on a confirm channel to the round-trip targets, not to 3× a stream', () => {
      const checks = checkTargets(
        compare([
          result('natural-confirm', 'rxamqp', 20_000, 30, { variant: 'concatMap' }),
          result('natural-confirm', 'rxamqp', 22_000, 28, { variant: 'await' }),
          result('natural-confirm', 'rxamqp', 150_000, 7, { variant: 'mergeMap' }),
          result('natural-confirm', 'amqplib', 130_000, 8, { variant: 'stream' }),
          result('natural-confirm', 'amqplib', 18_000, 35, { variant: 'await' }),
        ]),
      );
      expect(met(checks, 'natural-confirm concatMap: msg/s ≥')).toMatchObject({
        measured: '1.11×',
        met: true,
      });
      expect(met(checks, 'natural-confirm concatMap: CPU/msg ≤')).toMatchObject({ met: true });
      expect(checks.some((c) => c.target.includes('natural-confirm concatMap: ≥ 3×'))).toBe(false);
      expect(met(checks, 'natural-confirm mergeMap: ≥ 3×')).toMatchObject({ met: false });
    });

    it('check one request at a time and idle memory against the best peer', () => {
      const checks = checkTargets(
        compare([
          result('rpc', 'rxamqp', 16_000, 30, { variant: 'one' }),
          result('rpc', 'amqplib', 12_000, 60, { variant: 'one' }),
          result('idle', 'rxamqp', 5000, 100, { variant: 'channels', metrics: { 'heap B/resource': 2300 } }),
          result('idle', 'amqplib', 3000, 250, { variant: 'channels', metrics: { 'heap B/resource': 2600 } }),
          result('idle', 'rxamqp', 15_000, 75, { variant: 'consumers', metrics: { 'heap B/resource': 850 } }),
          result('idle', 'amqplib', 28_000, 40, {
            variant: 'consumers',
            metrics: { 'heap B/resource': 200 },
          }),
        ]),
      );
      expect(met(checks, 'rpc one: msg/s')).toMatchObject({ measured: '1.33×', met: true });
      expect(met(checks, 'rpc one: CPU/msg')).toMatchObject({ measured: '0.50×', met: true });
      expect(met(checks, 'idle channels')).toMatchObject({ measured: '0.88×', met: true });
      expect(met(checks, 'idle consumers')).toMatchObject({ measured: '4.25×', met: false });
    });

    it('check cold runs against 5× the best peer of the same variant', () => {
      const checks = checkTargets(
        compare([
          result('cold', 'rxamqp', 60_000, 10, { variant: 'publish' }),
          result('cold', 'amqplib', 10_000, 40, { variant: 'publish' }),
          result('cold', 'rxamqp', 20_000, 10, { variant: 'consume' }),
          result('cold', 'amqplib', 10_000, 40, { variant: 'consume' }),
          result('cold', 'raw', 900_000, 1, { variant: 'consume' }),
        ]),
      );
      expect(met(checks, 'cold publish')).toMatchObject({ measured: '6.00×', met: true });
      expect(met(checks, 'cold consume')).toMatchObject({ measured: '2.00×', met: false });
      expect(met(checks, 'cold confirm').met).toBeUndefined();
    });
  });

  it('draws the second chart only for issue 14’s scenarios, a bar per client and variant', () => {
    expect(naturalChart(compare([result('publish', 'rxamqp', 1, 1)]), 't')).toBeUndefined();
    const svg = naturalChart(compare(naturalPublish), 'title & more');
    expect(svg).toBeDefined();
    expect(svg).toContain('title &amp; more');
    // Two panels (rate, CPU), eight bars each.
    expect(svg!.match(/<rect x="\d+(\.\d+)?" y="[^"]+" width="14"/g)).toHaveLength(16);
    expect(svg).toContain('>mergeMap</text>');
    expect(svg).toContain('natural-publish @null');
  });
});
