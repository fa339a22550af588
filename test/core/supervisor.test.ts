/**
 * The connection supervisor's state machine in virtual time: attempts, retry delays, host order, loss
 * and recovery, giving up, and stopping, with stand-in connections driven by the test scheduler.
 */

import type { SchedulerLike } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import type { ResolvedOptions } from '../../src/config/options.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import type { ConnectionListener } from '../../src/core/connection-core.js';
import {
  type ConnectionState,
  type SupervisedCore,
  Supervisor,
  type SupervisorSink,
} from '../../src/core/supervisor.js';
import { AuthenticationError, ConnectionClosedError, type ConnectOptions } from '../../src/node.js';
import { nodePlatform } from '../../src/transport/node.js';

/** What one attempt does, at which virtual time after it starts (`loseAt` too counts from the start). */
type Step =
  | { at: number; does: 'open' | 'refuse' | 'auth' | 'time out' }
  | { at: number; does: 'open'; loseAt: number };

const refused = () =>
  new ConnectionClosedError('CONNECTION_LOST', 'connect ECONNREFUSED', { initiator: 'network' });
const timedOut = () =>
  new ConnectionClosedError('CONNECT_TIMEOUT', 'could not open a connection within 30000 ms', {
    initiator: 'network',
  });
const lost = () =>
  new ConnectionClosedError('CONNECTION_LOST', 'the peer closed the connection', { initiator: 'network' });
const badLogin = () =>
  new AuthenticationError('the broker refused the credentials', { mechanism: 'PLAIN', replyCode: 403 });

class FakeCore implements SupervisedCore {
  isClosed = false;
  everOpened = false;
  recovering: boolean | undefined;

  constructor(
    readonly options: ResolvedOptions,
    private readonly listener: ConnectionListener,
    private readonly scheduler: SchedulerLike,
    private readonly step: Step | undefined,
  ) {}

  start(): void {
    const step = this.step;
    if (step === undefined) return; // hangs: the test stops the supervisor
    this.scheduler.schedule(() => {
      if (this.isClosed) return;
      if (step.does === 'refuse') this.end(refused());
      else if (step.does === 'auth') this.end(badLogin());
      else if (step.does === 'time out') this.end(timedOut());
      else {
        this.everOpened = true;
        this.listener.opened();
        if ('loseAt' in step)
          this.scheduler.schedule(() => !this.isClosed && this.end(lost()), step.loseAt - step.at);
      }
    }, step.at);
  }

  close(): void {
    if (this.isClosed) return;
    this.listener.closing?.();
    this.isClosed = true;
    this.listener.closed(undefined);
  }

  private end(error: ConnectionClosedError | AuthenticationError): void {
    this.isClosed = true;
    this.recovering = this.listener.willRecover?.(error) ?? false;
    this.listener.closed(error);
  }
}

interface Run {
  readonly states: (readonly [number, string, string?, number?, number?])[];
  readonly events: string[];
  readonly cores: FakeCore[];
  readonly supervisor: Supervisor<FakeCore>;
}

/** Starts a supervisor whose attempts follow `steps` in order. */
function run(
  m: { scheduler: SchedulerLike },
  options: ConnectOptions,
  steps: Step[],
  hooks: { onState?: (s: ConnectionState, r: Run) => void; onLost?: (r: Run) => void } = {},
): Run {
  const scheduler = m.scheduler;
  const resolved = resolveOptions(
    'amqp://localhost',
    {
      ...options,
      ...(options.recovery === undefined || options.recovery === false
        ? {}
        : { recovery: { ...(options.recovery === true ? {} : options.recovery), scheduler } }),
    },
    nodePlatform,
  );
  const states: Run['states'] = [];
  const events: string[] = [];
  const cores: FakeCore[] = [];
  const sink: SupervisorSink<FakeCore> = {
    opened: (core) => events.push(`opened ${cores.indexOf(core)}`),
    lost: (core) => {
      events.push(`lost ${cores.indexOf(core)}`);
      hooks.onLost?.(result);
    },
    ended: (error) => events.push(error === undefined ? 'ended' : `ended ${error.constructor.name}`),
    blocked: () => {},
  };
  const report = (s: ConnectionState) => {
    states.push(
      [scheduler.now(), s.status, s.host, s.attempt, s.delay].filter(
        (v, i) => i < 2 || v !== undefined,
      ) as never,
    );
    hooks.onState?.(s, result);
  };
  const supervisor = new Supervisor<FakeCore>(resolved, sink, report, (o, listener) => {
    const core = new FakeCore(o, listener, scheduler, steps[cores.length]);
    cores.push(core);
    return core;
  });
  const result: Run = { states, events, cores, supervisor };
  supervisor.start();
  return result;
}

describe('Supervisor (virtual time)', () => {
  it(
    'with the default first-connect policy, gives up after a timed-out attempt once each host had one (issue 13: 182 s before)',
    marbles((m) => {
      const one = run(m, { recovery: true }, [
        { at: 30_000, does: 'time out' },
        { at: 1, does: 'open' },
      ]);
      const two = run(m, { hosts: ['a', 'b'], recovery: true }, [
        { at: 30_000, does: 'time out' },
        { at: 30_000, does: 'time out' },
        { at: 1, does: 'open' },
      ]);
      m.flush();
      expect(one.states.map(([at, status]) => [at, status])).toEqual([
        [0, 'CONNECTING'],
        [30_000, 'CLOSED'],
      ]);
      expect(two.states.filter(([, status]) => status === 'CONNECTING')).toHaveLength(2);
      expect(two.states.at(-1)?.[1]).toBe('CLOSED');
      expect(two.states.at(-1)?.[0]).toBeLessThan(60_200);
    }),
  );

  it(
    'with the default first-connect policy, still retries refused connections five times',
    marbles((m) => {
      const r = run(
        m,
        { recovery: true },
        Array.from({ length: 7 }, () => ({ at: 1, does: 'refuse' as const })),
      );
      m.flush();
      expect(r.states.filter(([, status]) => status === 'CONNECTING')).toHaveLength(6);
      expect(r.states.at(-1)?.[1]).toBe('CLOSED');
      expect(r.states.at(-1)?.[0]).toBeLessThan(3_200);
    }),
  );

  it(
    'retries the first connection with the initial policy, moving through the hosts',
    marbles((m) => {
      const r = run(m, { hosts: ['a', 'b'], recovery: { initial: { delays: [10, 20] } } }, [
        { at: 3, does: 'refuse' },
        { at: 3, does: 'refuse' },
        { at: 1, does: 'open' },
      ]);
      m.flush();
      expect(r.states).toEqual([
        [0, 'CONNECTING', 'a:5672', 1],
        [3, 'RECONNECTING', 'b:5672', 1, 10],
        [13, 'CONNECTING', 'b:5672', 2],
        [16, 'RECONNECTING', 'a:5672', 2, 20],
        [36, 'CONNECTING', 'a:5672', 3],
        [37, 'CONNECTED', 'a:5672'],
      ]);
      expect(r.events).toEqual(['opened 2']);
    }),
  );

  it(
    'after a loss uses the reconnect policy, starts again at the first host (in order), and the count restarts',
    marbles((m) => {
      const r = run(m, { hosts: ['a', 'b'], recovery: { initial: false, reconnect: { delays: [5, 7] } } }, [
        { at: 1, does: 'open', loseAt: 50 },
        { at: 2, does: 'refuse' },
        { at: 1, does: 'open', loseAt: 100 },
        { at: 1, does: 'open' },
      ]);
      m.flush();
      expect(r.states).toEqual([
        [0, 'CONNECTING', 'a:5672', 1],
        [1, 'CONNECTED', 'a:5672'],
        [50, 'RECONNECTING', 'a:5672', 1, 5],
        [55, 'CONNECTING', 'a:5672', 1],
        [57, 'RECONNECTING', 'b:5672', 2, 7],
        [64, 'CONNECTING', 'b:5672', 2],
        [65, 'CONNECTED', 'b:5672'],
        [164, 'RECONNECTING', 'a:5672', 1, 5],
        [169, 'CONNECTING', 'a:5672', 1],
        [170, 'CONNECTED', 'a:5672'],
      ]);
      expect(r.events).toEqual(['opened 0', 'lost 0', 'opened 2', 'lost 2', 'opened 3']);
      // The lost connections were told a recovering connection replaces them (their channels complete).
      expect(r.cores[0]!.recovering).toBe(true);
      expect(r.cores[2]!.recovering).toBe(true);
    }),
  );

  it(
    'round robin: a recovery starts at the host after the one last used',
    marbles((m) => {
      const r = run(
        m,
        { hosts: ['a', 'b', 'c'], recovery: { reconnect: { delays: [5] }, hostOrder: 'round-robin' } },
        [
          { at: 1, does: 'refuse' },
          { at: 1, does: 'open', loseAt: 20 },
          { at: 1, does: 'open' },
        ],
      );
      m.flush();
      expect(r.states.map(([, status, host]) => `${status} ${host ?? ''}`.trim())).toEqual([
        'CONNECTING a:5672',
        'RECONNECTING b:5672',
        'CONNECTING b:5672',
        'CONNECTED b:5672',
        'RECONNECTING c:5672',
        'CONNECTING c:5672',
        'CONNECTED c:5672',
      ]);
    }),
  );

  it(
    'never retries a refused login: it ends with the error, and a lost connection is not told to recover',
    marbles((m) => {
      const r = run(m, { recovery: { initial: { delays: [1] }, reconnect: { delays: [1] } } }, [
        { at: 1, does: 'open', loseAt: 10 },
        { at: 2, does: 'auth' },
        { at: 1, does: 'open' },
      ]);
      m.flush();
      expect(r.states.map(([t, s]) => `${t} ${s}`)).toEqual([
        '0 CONNECTING',
        '1 CONNECTED',
        '10 RECONNECTING',
        '11 CONNECTING',
        '13 CLOSED',
      ]);
      expect(r.events).toEqual(['opened 0', 'lost 0', 'ended AuthenticationError']);
      expect(r.cores).toHaveLength(2);
      expect(r.cores[1]!.recovering).toBe(false);
    }),
  );

  it(
    'gives up when the attempts run out, and ends with the last error',
    marbles((m) => {
      const r = run(m, { recovery: { initial: { delays: [4], maxAttempts: 2 } } }, [
        { at: 1, does: 'refuse' },
        { at: 1, does: 'refuse' },
        { at: 1, does: 'refuse' },
        { at: 1, does: 'open' },
      ]);
      m.flush();
      expect(r.states.map(([t, s]) => `${t} ${s}`)).toEqual([
        '0 CONNECTING',
        '1 RECONNECTING',
        '5 CONNECTING',
        '6 RECONNECTING',
        '10 CONNECTING',
        '11 CLOSED',
      ]);
      expect(r.events).toEqual(['ended ConnectionClosedError']);
      expect(r.cores).toHaveLength(3);
    }),
  );

  it(
    'without recovery the first error ends it, and a loss is not recovered',
    marbles((m) => {
      const first = run(m, {}, [{ at: 1, does: 'refuse' }]);
      const second = run(m, {}, [{ at: 1, does: 'open', loseAt: 5 }]);
      m.flush();
      expect(first.states.map(([, s]) => s)).toEqual(['CONNECTING', 'CLOSED']);
      expect(first.events).toEqual(['ended ConnectionClosedError']);
      expect(second.states.map(([, s]) => s)).toEqual(['CONNECTING', 'CONNECTED', 'CLOSED']);
      expect(second.events).toEqual(['opened 0', 'lost 0', 'ended ConnectionClosedError']);
      expect(second.cores[0]!.recovering).toBe(false);
    }),
  );

  it(
    'without recovery the first connection still tries each host once, in order, without delay',
    marbles((m) => {
      const r = run(m, { hosts: ['a', 'b', 'c'] }, [
        { at: 2, does: 'refuse' },
        { at: 2, does: 'refuse' },
        { at: 2, does: 'refuse' },
      ]);
      const s = run(m, { hosts: ['a', 'b', 'c'] }, [
        { at: 2, does: 'refuse' },
        { at: 2, does: 'open' },
      ]);
      m.flush();
      expect(r.states.map(([t, st, host]) => `${t} ${st} ${host ?? ''}`.trim())).toEqual([
        '0 CONNECTING a:5672',
        '2 RECONNECTING b:5672',
        '2 CONNECTING b:5672',
        '4 RECONNECTING c:5672',
        '4 CONNECTING c:5672',
        '6 CLOSED',
      ]);
      expect(r.events).toEqual(['ended ConnectionClosedError']);
      expect(s.events).toEqual(['opened 1']);
    }),
  );

  it(
    'a policy whose retryable accepts every error retries even a refused login',
    marbles((m) => {
      const r = run(m, { recovery: { initial: { delays: [3], retryable: () => true } } }, [
        { at: 1, does: 'auth' },
        { at: 1, does: 'open' },
      ]);
      m.flush();
      expect(r.states.map(([t, st]) => `${t} ${st}`)).toEqual([
        '0 CONNECTING',
        '1 RECONNECTING',
        '4 CONNECTING',
        '5 CONNECTED',
      ]);
    }),
  );

  it(
    'stop() during a retry wait ends it at once, and no attempt starts afterwards',
    marbles((m) => {
      const r = run(m, { recovery: { initial: { delays: [100] } } }, [{ at: 1, does: 'refuse' }]);
      m.scheduler.schedule(() => r.supervisor.stop(), 20);
      m.flush();
      expect(r.states.map(([t, s]) => `${t} ${s}`)).toEqual(['0 CONNECTING', '1 RECONNECTING', '20 CLOSED']);
      expect(r.events).toEqual(['ended']);
      expect(r.cores).toHaveLength(1);
    }),
  );

  it(
    'stop() on an open connection closes it (CLOSING, then CLOSED) without recovering',
    marbles((m) => {
      const r = run(m, { recovery: true }, [{ at: 1, does: 'open' }]);
      m.scheduler.schedule(() => r.supervisor.stop(), 5);
      m.flush();
      expect(r.states.map(([t, s]) => `${t} ${s}`)).toEqual([
        '0 CONNECTING',
        '1 CONNECTED',
        '5 CLOSING',
        '5 CLOSED',
      ]);
      expect(r.events).toEqual(['opened 0', 'ended']);
    }),
  );

  it(
    'stop() during an attempt abandons it',
    marbles((m) => {
      const r = run(m, { recovery: true }, []); // the attempt never answers
      m.scheduler.schedule(() => r.supervisor.stop(), 5);
      m.flush();
      expect(r.states.map(([t, s]) => `${t} ${s}`)).toEqual(['0 CONNECTING', '5 CLOSING', '5 CLOSED']);
      expect(r.events).toEqual(['ended']);
      expect(r.cores[0]!.isClosed).toBe(true);
    }),
  );

  it(
    'the client closing an open recovering connection ends it for good',
    marbles((m) => {
      const r = run(m, { recovery: { reconnect: { delays: [1] } } }, [{ at: 1, does: 'open' }]);
      m.scheduler.schedule(() => r.cores[0]!.close(), 5);
      m.flush();
      expect(r.states.map(([t, s]) => `${t} ${s}`)).toEqual([
        '0 CONNECTING',
        '1 CONNECTED',
        '5 CLOSING',
        '5 CLOSED',
      ]);
      expect(r.events).toEqual(['opened 0', 'lost 0', 'ended']);
      expect(r.cores).toHaveLength(1);
    }),
  );

  it(
    'a subscriber leaving on CONNECTING: no connection is opened, and CLOSED is the last state',
    marbles((m) => {
      const r = run(
        m,
        { recovery: { initial: { delays: [5] } } },
        [
          { at: 1, does: 'refuse' },
          { at: 1, does: 'open' },
        ],
        {
          onState: (s, run) => {
            if (s.status === 'CONNECTING' && s.attempt === 2) run.supervisor.stop();
          },
        },
      );
      m.flush();
      expect(r.states.map(([t, st]) => `${t} ${st}`)).toEqual([
        '0 CONNECTING',
        '1 RECONNECTING',
        '6 CONNECTING',
        '6 CLOSED',
      ]);
      expect(r.cores).toHaveLength(1);
      expect(r.events).toEqual(['ended']);
    }),
  );

  it(
    'a subscriber leaving on RECONNECTING: the retry timer is cancelled',
    marbles((m) => {
      const r = run(
        m,
        { recovery: { initial: { delays: [5] } } },
        [
          { at: 1, does: 'refuse' },
          { at: 1, does: 'open' },
        ],
        {
          onState: (s, run) => {
            if (s.status === 'RECONNECTING') run.supervisor.stop();
          },
        },
      );
      m.flush();
      expect(r.states.map(([t, st]) => `${t} ${st}`)).toEqual(['0 CONNECTING', '1 RECONNECTING', '1 CLOSED']);
      expect(r.cores).toHaveLength(1);
    }),
  );

  it(
    'a subscriber leaving when told of the loss: CLOSED, and no RECONNECTING after it',
    marbles((m) => {
      const r = run(
        m,
        { recovery: { reconnect: { delays: [5] } } },
        [
          { at: 1, does: 'open', loseAt: 3 },
          { at: 1, does: 'open' },
        ],
        {
          onLost: (run) => run.supervisor.stop(),
        },
      );
      m.flush();
      expect(r.states.map(([t, st]) => `${t} ${st}`)).toEqual(['0 CONNECTING', '1 CONNECTED', '3 CLOSED']);
      expect(r.events).toEqual(['opened 0', 'lost 0', 'ended']);
      expect(r.cores).toHaveLength(1);
    }),
  );

  it(
    'close() then stop(): CLOSING is reported once',
    marbles((m) => {
      const r = run(m, { recovery: true }, [{ at: 1, does: 'open' }], {
        onState: (s, run) => {
          if (s.status === 'CLOSING') run.supervisor.stop();
        },
      });
      m.scheduler.schedule(() => r.cores[0]!.close(), 5);
      m.flush();
      expect(r.states.map(([, st]) => st).filter((st) => st === 'CLOSING')).toHaveLength(1);
      expect(r.states.at(-1)![1]).toBe('CLOSED');
    }),
  );

  it(
    'backoff delays grow to the cap (jitter off)',
    marbles((m) => {
      const r = run(
        m,
        {
          recovery: {
            initial: {
              backoff: { initialDelay: 10, multiplier: 3, maxDelay: 100, jitter: 0 },
              maxAttempts: 4,
            },
          },
        },
        [1, 2, 3, 4, 5].map(() => ({ at: 0, does: 'refuse' as const })),
      );
      m.flush();
      expect(r.states.filter(([, s]) => s === 'RECONNECTING').map(([, , , , delay]) => delay)).toEqual([
        10, 30, 90, 100,
      ]);
      expect(r.events).toEqual(['ended ConnectionClosedError']);
    }),
  );
});

describe('Supervisor: cluster-aware hosts (virtual time)', () => {
  const cluster = [
    { hostname: 'a', node: 'rabbit@a' },
    { hostname: 'b', node: 'rabbit@b' },
    { hostname: 'c', node: 'rabbit@c' },
  ];
  const nodesOf = (states: ConnectionState[]) =>
    states.map((s) => `${s.status} ${s.host ?? ''} ${s.node ?? ''}`.trim());

  it(
    'reports the node of the host (from the hosts entry) in every state that names a host',
    marbles((m) => {
      const seen: ConnectionState[] = [];
      run(
        m,
        { hosts: [cluster[0]!, 'b'], recovery: { initial: false, reconnect: { delays: [5] } } },
        [
          { at: 1, does: 'open', loseAt: 10 },
          { at: 1, does: 'refuse' },
          { at: 1, does: 'open' },
        ],
        { onState: (s) => seen.push(s) },
      );
      m.flush();
      expect(nodesOf(seen)).toEqual([
        'CONNECTING a:5672 rabbit@a',
        'CONNECTED a:5672 rabbit@a',
        'RECONNECTING a:5672 rabbit@a',
        'CONNECTING a:5672 rabbit@a',
        'RECONNECTING b:5672',
        'CONNECTING b:5672',
        'CONNECTED b:5672',
      ]);
    }),
  );

  it(
    'preferNode picks the first host of the first connection and of each reconnect',
    marbles((m) => {
      const answers = ['rabbit@c', 'rabbit@b'];
      const asked: number[] = [];
      const seen: ConnectionState[] = [];
      run(
        m,
        {
          hosts: cluster,
          preferNode: () => {
            asked.push(m.scheduler.now());
            return answers.shift();
          },
          recovery: { initial: false, reconnect: { delays: [5] } },
        },
        [
          { at: 1, does: 'open', loseAt: 10 },
          { at: 1, does: 'open', loseAt: 20 },
          { at: 1, does: 'open' },
        ],
        { onState: (s) => seen.push(s) },
      );
      m.flush();
      expect(nodesOf(seen).filter((s) => s.startsWith('CONNECTED'))).toEqual([
        'CONNECTED c:5672 rabbit@c',
        'CONNECTED b:5672 rabbit@b',
        // No answer the third time: in order, from the first host.
        'CONNECTED a:5672 rabbit@a',
      ]);
      // Asked at the start and after each reconnect delay, not on the loss itself.
      expect(asked).toEqual([0, 15, 40]);
    }),
  );

  it(
    'with preferNode, RECONNECTING after a loss names no host (preferNode picks it after the delay); after a failed attempt it names the next',
    marbles((m) => {
      const seen: ConnectionState[] = [];
      const r = run(
        m,
        {
          hosts: cluster,
          preferNode: () => 'rabbit@c',
          recovery: { initial: false, reconnect: { delays: [5, 5] } },
        },
        [
          { at: 1, does: 'open', loseAt: 10 },
          { at: 1, does: 'refuse' },
          { at: 1, does: 'open' },
        ],
        { onState: (s) => seen.push(s) },
      );
      m.flush();
      expect(nodesOf(seen)).toEqual([
        'CONNECTING c:5672 rabbit@c',
        'CONNECTED c:5672 rabbit@c',
        'RECONNECTING',
        'CONNECTING c:5672 rabbit@c',
        // A failed attempt within the sequence: the next host is known.
        'RECONNECTING a:5672 rabbit@a',
        'CONNECTING a:5672 rabbit@a',
        'CONNECTED a:5672 rabbit@a',
      ]);
      const reconnecting = seen.filter((s) => s.status === 'RECONNECTING');
      expect(reconnecting[0]).not.toHaveProperty('host');
      expect(reconnecting[0]).not.toHaveProperty('node');
      expect(reconnecting[0]).toMatchObject({ attempt: 1, delay: 5 });
      expect(r.states.filter(([, s]) => s === 'RECONNECTING')).toEqual([
        [10, 'RECONNECTING', 1, 5],
        [16, 'RECONNECTING', 'a:5672', 2, 5],
      ]);
    }),
  );

  it(
    'a thenable answer is waited for; an unknown node, a throw or a rejection fall back to the usual order',
    marbles((m) => {
      const first = (options: ConnectOptions) => {
        const seen: ConnectionState[] = [];
        run(m, { hosts: cluster, recovery: true, ...options }, [{ at: 1, does: 'open' }], {
          onState: (s) => seen.push(s),
        });
        return seen;
      };
      const thenable = first({
        preferNode: () =>
          // biome-ignore lint/suspicious/noThenProperty: a synchronous thenable, so that virtual time sees the answer
          ({ then: (ok: (v: string) => void) => ok('rabbit@b') }) as PromiseLike<string>,
      });
      const unknown = first({ preferNode: () => 'rabbit@elsewhere' });
      const throws = first({
        preferNode: () => {
          throw new Error('management API down');
        },
      });
      const rejects = first({
        preferNode: () =>
          // biome-ignore lint/suspicious/noThenProperty: a synchronous thenable, so that virtual time sees the answer
          ({ then: (_: unknown, no: (e: Error) => void) => no(new Error('404')) }) as PromiseLike<string>,
      });
      m.flush();
      expect(thenable[0]?.host).toBe('b:5672');
      for (const seen of [unknown, throws, rejects]) expect(seen[0]?.host).toBe('a:5672');
    }),
  );

  it(
    'an answer that does not come within 5 s: the usual order; stopping while waiting ends at once',
    marbles((m) => {
      const seen: ConnectionState[] = [];
      const silent = run(
        m,
        { hosts: cluster, recovery: true, preferNode: () => new Promise<string>(() => {}) },
        [{ at: 1, does: 'open' }],
        { onState: (s) => seen.push(s) },
      );
      const stopped = run(
        m,
        { hosts: cluster, recovery: true, preferNode: () => new Promise<string>(() => {}) },
        [{ at: 1, does: 'open' }],
      );
      m.scheduler.schedule(() => stopped.supervisor.stop(), 100);
      m.flush();
      expect(silent.states[0]).toEqual([5000, 'CONNECTING', 'a:5672', 1]);
      expect(seen[0]?.node).toBe('rabbit@a');
      expect(stopped.states).toEqual([[100, 'CLOSED']]);
      expect(stopped.cores).toHaveLength(0);
    }),
  );

  it('preferNode needs a function and hosts that name their nodes; node must be a non-empty string', () => {
    const resolve = (options: ConnectOptions) => () =>
      resolveOptions('amqp://localhost', options, nodePlatform);
    expect(resolve({ hosts: ['a', 'b'], preferNode: () => 'rabbit@a' })).toThrow(
      /hosts that name their nodes/,
    );
    expect(resolve({ hosts: cluster, preferNode: 'rabbit@a' as never })).toThrow(
      /preferNode must be a function/,
    );
    expect(resolve({ hosts: [{ hostname: 'a', node: '' }] })).toThrow(/hosts\[0\]\.node must be a node name/);
    expect(resolve({ hosts: cluster, preferNode: () => undefined })().endpoints.map((e) => e.node)).toEqual([
      'rabbit@a',
      'rabbit@b',
      'rabbit@c',
    ]);
  });
});
