import fc from 'fast-check';
import { defer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { marbles } from 'rxjs-marbles/jest';
import { AuthenticationError, ConfigurationError, ConnectionClosedError } from '../../src/errors.js';
import {
  isRetryableError,
  type RetryPolicy,
  retryPolicy,
  retryWithPolicy,
} from '../../src/recovery/retry-policy.js';

const lost = (): ConnectionClosedError =>
  new ConnectionClosedError('CONNECTION_LOST', 'the connection to 127.0.0.1:5672 was lost: ECONNRESET', {
    initiator: 'network',
    cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
  });

const serverClose = (replyCode: number, replyText: string): ConnectionClosedError =>
  ConnectionClosedError.fromServer({ replyCode, replyText, classId: 0, methodId: 0 });

const tlsFailure = (code: string): ConnectionClosedError =>
  new ConnectionClosedError('TLS_HANDSHAKE_FAILED', `TLS handshake with localhost:5671 failed: ${code}`, {
    initiator: 'network',
    cause: Object.assign(new Error(code), { code }),
  });

/** A random source that returns `values` in turn (then the last one again). */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}

describe('retryPolicy', () => {
  describe('delays', () => {
    it('uses delays[n-1] for attempt n, then repeats the last one', () => {
      const policy = retryPolicy({ delays: [0, 10, 250] });
      const e = lost();
      expect([1, 2, 3, 4, 5, 100].map((n) => policy.delayFor(n, e))).toEqual([0, 10, 250, 250, 250, 250]);
    });

    it('never retries with an empty list', () => {
      expect(retryPolicy({ delays: [] }).delayFor(1, lost())).toBeUndefined();
    });

    it('applies no jitter to explicit delays', () => {
      const policy = retryPolicy({ delays: [100] }, {}, () => 0.9);
      expect(policy.delayFor(1, lost())).toBe(100);
    });
  });

  describe('backoff', () => {
    it('grows by the multiplier from the initial delay and stops at maxDelay', () => {
      const policy = retryPolicy({
        backoff: { initialDelay: 100, multiplier: 3, maxDelay: 1000, jitter: 0 },
      });
      const e = lost();
      expect([1, 2, 3, 4, 5, 50, 5000].map((n) => policy.delayFor(n, e))).toEqual([
        100, 300, 900, 1000, 1000, 1000, 1000,
      ]);
    });

    it('has the defaults 100 ms, x2, 30 s and jitter 0.5', () => {
      const top = retryPolicy({}, {}, () => 0);
      const bottom = retryPolicy({}, {}, () => 1);
      const e = lost();
      expect([1, 2, 3, 9, 10, 11, 40].map((n) => top.delayFor(n, e))).toEqual([
        100, 200, 400, 25_600, 30_000, 30_000, 30_000,
      ]);
      expect([1, 2, 10].map((n) => bottom.delayFor(n, e))).toEqual([50, 100, 15_000]);
    });

    it('stays at 0 with a zero initial delay however many attempts (no NaN from 0 * Infinity)', () => {
      const policy = retryPolicy({ backoff: { initialDelay: 0, multiplier: 10 } }, {}, () => 0.3);
      expect(policy.delayFor(100_000, lost())).toBe(0);
    });

    it('keeps a multiplier of 1 constant', () => {
      const policy = retryPolicy({ backoff: { initialDelay: 70, multiplier: 1, jitter: 0 } });
      expect([1, 2, 1000].map((n) => policy.delayFor(n, lost()))).toEqual([70, 70, 70]);
    });

    it('draws the jittered delay from [d*(1-jitter), d] with the injected random source', () => {
      const policy = retryPolicy(
        { backoff: { initialDelay: 1000, multiplier: 2, jitter: 0.2 } },
        {},
        sequence(0, 0.5, 1, 0.25),
      );
      const e = lost();
      expect([1, 1, 1, 2].map((n) => policy.delayFor(n, e))).toEqual([1000, 900, 800, 1900]);
    });

    it('keeps the delay in range when the random source misbehaves', () => {
      const e = lost();
      const jittered = (r: number) =>
        retryPolicy({ backoff: { initialDelay: 100, jitter: 0.5 } }, {}, () => r).delayFor(1, e);
      expect([jittered(-3), jittered(7), jittered(Number.NaN)]).toEqual([100, 50, 100]);
    });

    it('keeps every delay within [d*(1-jitter), d] and at most maxDelay (property)', () => {
      fc.assert(
        fc.property(
          fc.record({
            initialDelay: fc.double({ min: 0, max: 100_000, noNaN: true }),
            multiplier: fc.double({ min: 1, max: 20, noNaN: true }),
            maxDelay: fc.double({ min: 0, max: 2_147_483_647, noNaN: true }),
            jitter: fc.double({ min: 0, max: 1, noNaN: true }),
          }),
          fc.integer({ min: 1, max: 5000 }),
          fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
          (backoff, attempt, r) => {
            const delay = retryPolicy({ backoff }, {}, () => r).delayFor(attempt, lost());
            const { initialDelay, multiplier, maxDelay, jitter } = backoff;
            const d = initialDelay === 0 ? 0 : Math.min(maxDelay, initialDelay * multiplier ** (attempt - 1));
            expect(delay).toBeDefined();
            expect(delay).toBeGreaterThanOrEqual(d * (1 - jitter));
            expect(delay).toBeLessThanOrEqual(d);
            expect(delay).toBeLessThanOrEqual(maxDelay);
          },
        ),
        { numRuns: 2000 },
      );
    });
  });

  describe('maxAttempts and retryable', () => {
    it('gives up after maxAttempts retries', () => {
      const policy = retryPolicy({ delays: [5], maxAttempts: 3 });
      expect([1, 2, 3, 4, 5].map((n) => policy.delayFor(n, lost()))).toEqual([5, 5, 5, undefined, undefined]);
    });

    it('never retries with maxAttempts 0, and has no limit by default', () => {
      expect(retryPolicy({ maxAttempts: 0 }).delayFor(1, lost())).toBeUndefined();
      expect(retryPolicy({ delays: [1] }).delayFor(1e9, lost())).toBe(1);
      expect(retryPolicy({ delays: [1], maxAttempts: Infinity }).delayFor(1e9, lost())).toBe(1);
    });

    it('gives up at once on an error that is not retryable', () => {
      const policy = retryPolicy({ delays: [5] });
      expect(policy.delayFor(1, new AuthenticationError('refused', { mechanism: 'PLAIN' }))).toBeUndefined();
    });

    it('asks `retryable` about each error', () => {
      const seen: unknown[] = [];
      const policy = retryPolicy({
        delays: [5],
        retryable: (e) => {
          seen.push(e);
          return e === 'again';
        },
      });
      expect(policy.delayFor(1, 'again')).toBe(5);
      expect(policy.delayFor(1, new AuthenticationError('x', { mechanism: 'PLAIN' }))).toBeUndefined();
      // A custom predicate replaces isRetryableError entirely.
      const always = retryPolicy({ delays: [5], retryable: () => true });
      expect(always.delayFor(1, new AuthenticationError('x', { mechanism: 'PLAIN' }))).toBe(5);
      expect(seen).toHaveLength(2);
    });

    it('rejects an attempt that is not an integer >= 1', () => {
      const policy = retryPolicy();
      for (const attempt of [0, -1, 1.5, Number.NaN]) {
        expect(() => policy.delayFor(attempt, lost())).toThrow(RangeError);
      }
    });
  });

  describe('defaults', () => {
    it('fills what the options leave out', () => {
      const policy = retryPolicy({}, { delays: [7], maxAttempts: 1 });
      expect([1, 2].map((n) => policy.delayFor(n, lost()))).toEqual([7, undefined]);
    });

    it('takes the options over the defaults, the backoff field by field', () => {
      const policy = retryPolicy(
        { backoff: { maxDelay: 500 }, maxAttempts: 2 },
        { backoff: { initialDelay: 200, multiplier: 4, jitter: 0 }, maxAttempts: 10 },
      );
      expect([1, 2, 3].map((n) => policy.delayFor(n, lost()))).toEqual([200, 500, undefined]);
    });

    it('lets explicit delays in the options replace a backoff in the defaults, and the other way round', () => {
      expect(retryPolicy({ delays: [3] }, { backoff: { initialDelay: 1000 } }).delayFor(1, lost())).toBe(3);
      const backoff = retryPolicy({ backoff: { initialDelay: 40, jitter: 0 } }, { delays: [3] });
      expect(backoff.delayFor(2, lost())).toBe(80);
    });

    it('takes `retryable` from the defaults', () => {
      const policy = retryPolicy({ delays: [1] }, { retryable: () => false });
      expect(policy.delayFor(1, lost())).toBeUndefined();
    });
  });

  describe('validation', () => {
    const bad: [string, () => unknown][] = [
      ['a negative delay', () => retryPolicy({ delays: [10, -1] })],
      ['a NaN delay', () => retryPolicy({ delays: [Number.NaN] })],
      ['an infinite delay', () => retryPolicy({ delays: [Infinity] })],
      ['a delay longer than a timer can wait', () => retryPolicy({ delays: [2 ** 31] })],
      ['delays that are not an array', () => retryPolicy({ delays: 5 as unknown as number[] })],
      ['a negative initial delay', () => retryPolicy({ backoff: { initialDelay: -1 } })],
      ['a negative maxDelay', () => retryPolicy({ backoff: { maxDelay: -5 } })],
      ['an infinite maxDelay', () => retryPolicy({ backoff: { maxDelay: Infinity } })],
      ['jitter below 0', () => retryPolicy({ backoff: { jitter: -0.1 } })],
      ['jitter above 1', () => retryPolicy({ backoff: { jitter: 1.5 } })],
      ['a NaN jitter', () => retryPolicy({ backoff: { jitter: Number.NaN } })],
      ['a multiplier below 1', () => retryPolicy({ backoff: { multiplier: 0.5 } })],
      ['an infinite multiplier', () => retryPolicy({ backoff: { multiplier: Infinity } })],
      ['both delays and backoff', () => retryPolicy({ delays: [1], backoff: {} })],
      ['both delays and backoff in the defaults', () => retryPolicy({}, { delays: [1], backoff: {} })],
      ['a bad value in the defaults', () => retryPolicy({}, { backoff: { jitter: 2 } })],
      ['a negative maxAttempts', () => retryPolicy({ maxAttempts: -1 })],
      ['a fractional maxAttempts', () => retryPolicy({ maxAttempts: 2.5 })],
      ['a NaN maxAttempts', () => retryPolicy({ maxAttempts: Number.NaN })],
      ['a bad maxAttempts in the defaults', () => retryPolicy({}, { maxAttempts: -Infinity })],
      ['a retryable that is not a function', () => retryPolicy({ retryable: true as never })],
      ['a random that is not a function', () => retryPolicy({}, {}, 0.5 as never)],
    ];
    it.each(bad)('throws a ConfigurationError for %s', (_what, build) => {
      expect(build).toThrow(ConfigurationError);
    });

    it('names the option in the message', () => {
      expect(() => retryPolicy({ backoff: { jitter: 2 } })).toThrow(/backoff\.jitter.*2/);
      expect(() => retryPolicy({ delays: [1, -4] })).toThrow(/delays\[1\].*-4/);
      expect(() => retryPolicy({ delays: [1], backoff: {} })).toThrow(/both delays and backoff/);
    });

    it('accepts the limits', () => {
      expect(() =>
        retryPolicy({ backoff: { initialDelay: 0, multiplier: 1, maxDelay: 2 ** 31 - 1, jitter: 1 } }),
      ).not.toThrow();
      expect(() => retryPolicy({ delays: [0], maxAttempts: 0 })).not.toThrow();
      expect(() => retryPolicy({ maxAttempts: Infinity })).not.toThrow();
    });
  });
});

describe('isRetryableError', () => {
  it.each([
    [
      'an AuthenticationError',
      new AuthenticationError('ACCESS_REFUSED', { mechanism: 'PLAIN', replyCode: 403 }),
    ],
    ['a ConfigurationError', new ConfigurationError('bad URL')],
    ['a 403 ACCESS_REFUSED close', serverClose(403, "ACCESS_REFUSED - access to vhost 'x' refused")],
    ['a 530 NOT_ALLOWED close (unknown vhost)', serverClose(530, 'NOT_ALLOWED - vhost nope not found')],
    ...[
      'CERT_HAS_EXPIRED',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_NOT_YET_VALID',
    ].map((code): [string, unknown] => [`a TLS ${code} failure`, tlsFailure(code)]),
    [
      'a bare TLS verification error',
      Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }),
    ],
    [
      'an error whose cause chain holds a 530 close',
      new Error('channel failed', {
        cause: new Error('wrapped', { cause: serverClose(530, 'NOT_ALLOWED') }),
      }),
    ],
  ])('is false for %s', (_what, error) => {
    expect(isRetryableError(error)).toBe(false);
  });

  it.each([
    ['a lost connection (ECONNRESET)', lost()],
    [
      'a refused connection (ECONNREFUSED)',
      new ConnectionClosedError('CONNECTION_LOST', 'could not connect to 127.0.0.1:5672: ECONNREFUSED', {
        initiator: 'network',
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      }),
    ],
    [
      'a 320 CONNECTION_FORCED close',
      serverClose(320, 'CONNECTION_FORCED - broker forced connection closure'),
    ],
    ['a 541 INTERNAL_ERROR close', serverClose(541, 'INTERNAL_ERROR')],
    [
      'a heartbeat timeout',
      new ConnectionClosedError('HEARTBEAT_TIMEOUT', 'missed heartbeats', { initiator: 'network' }),
    ],
    [
      'a connect timeout',
      new ConnectionClosedError('CONNECT_TIMEOUT', 'no connection in 30000 ms', { initiator: 'network' }),
    ],
    ['a TLS handshake cut by the peer', tlsFailure('ECONNRESET')],
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['null', null],
  ])('is true for %s', (_what, error) => {
    expect(isRetryableError(error)).toBe(true);
  });

  it('ends on a cyclic cause chain', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(isRetryableError(a)).toBe(true);
    const self = new Error('self');
    Object.assign(self, { cause: self });
    expect(isRetryableError(self)).toBe(true);
  });
});

describe('retryWithPolicy', () => {
  const boom = new Error('boom');
  const noJitter = (delays: readonly number[], maxAttempts = Infinity): RetryPolicy =>
    retryPolicy({ delays, maxAttempts }, {}, () => 0);

  it(
    'waits each listed delay, repeats the last, and re-emits the error after maxAttempts',
    marbles((m) => {
      const source = m.cold('-#', undefined, boom);
      const result = source.pipe(retryWithPolicy(noJitter([2, 5], 3)));
      // errors at 1, 4, 10, 16; waits 2, 5, 5 (the last delay repeated); gives up at 16.
      m.expect(result).toBeObservable('16ms #', undefined, boom);
      m.expect(source).toHaveSubscriptions(['^!', '---^!', '9ms ^!', '15ms ^!']);
    }),
  );

  it(
    'grows a backoff up to its cap',
    marbles((m) => {
      const source = m.cold('-#', undefined, boom);
      const policy = retryPolicy({
        backoff: { initialDelay: 1, multiplier: 2, maxDelay: 5, jitter: 0 },
        maxAttempts: 5,
      });
      // waits 1, 2, 4, 5, 5
      m.expect(source.pipe(retryWithPolicy(policy))).toBeObservable('23ms #', undefined, boom);
      m.expect(source).toHaveSubscriptions(['^!', '--^!', '-----^!', '10ms ^!', '16ms ^!', '22ms ^!']);
    }),
  );

  it(
    'waits the jittered delays the random source gives',
    marbles((m) => {
      const source = m.cold('-#', undefined, boom);
      const policy = retryPolicy(
        { backoff: { initialDelay: 4, multiplier: 2, maxDelay: 100, jitter: 0.5 }, maxAttempts: 3 },
        {},
        sequence(0, 1, 0.5),
      );
      // 4 (top), 8 * 0.5 (bottom), 16 * 0.75
      m.expect(source.pipe(retryWithPolicy(policy))).toBeObservable('24ms #', undefined, boom);
      m.expect(source).toHaveSubscriptions(['^!', '-----^!', '10ms ^!', '23ms ^!']);
    }),
  );

  it(
    'passes values and completion through, and gives up at once with maxAttempts 0',
    marbles((m) => {
      m.expect(m.cold('-a-b|').pipe(retryWithPolicy(noJitter([1])))).toBeObservable('-a-b|');
      const source = m.cold('-a#', undefined, boom);
      m.expect(source.pipe(retryWithPolicy(noJitter([1], 0)))).toBeObservable('-a#', undefined, boom);
    }),
  );

  it(
    'lets an error that is not retryable through at once',
    marbles((m) => {
      const denied = new AuthenticationError('ACCESS_REFUSED', { mechanism: 'PLAIN', replyCode: 403 });
      const source = m.cold('--#', undefined, denied);
      const onRetry = jest.fn();
      m.expect(source.pipe(retryWithPolicy(noJitter([1]), { onRetry }))).toBeObservable(
        '--#',
        undefined,
        denied,
      );
      m.expect(source).toHaveSubscriptions('^-!');
      m.flush();
      expect(onRetry).not.toHaveBeenCalled();
    }),
  );

  it(
    'counts attempts from 1 again after the source emits a value',
    marbles((m) => {
      // The first and third subscriptions emit a value before failing.
      const runs = ['-a-#', '-#', '-a-#', '-#', '-#'];
      let subscriptions = 0;
      const source = defer(() => m.cold<string>(runs[subscriptions++] ?? '-#', undefined, boom));
      const calls: [number, number, number][] = [];
      const result = source.pipe(
        retryWithPolicy(noJitter([1, 2, 4], 2), {
          onRetry: ({ attempt, delay, error }) => {
            expect(error).toBe(boom);
            calls.push([m.scheduler.now(), attempt, delay]);
          },
        }),
      );
      // a at 1; error at 3 (attempt 1, +1); error at 5 (attempt 2, +2); a at 8 resets; error at 10
      // (attempt 1, +1); error at 12 (attempt 2, +2); error at 15 (attempt 3 > 2): given up.
      m.expect(result).toBeObservable('-a------a------#', undefined, boom);
      m.flush();
      expect(calls).toEqual([
        [3, 1, 1],
        [5, 2, 2],
        [10, 1, 1],
        [12, 2, 2],
      ]);
    }),
  );

  it(
    'calls onRetry before each wait with the attempt, the delay and the error',
    marbles((m) => {
      const errors = [new Error('first'), new Error('second')];
      let n = 0;
      const source = defer(() => m.cold('-#', undefined, errors[n++] ?? boom));
      const calls: unknown[] = [];
      const result = source.pipe(
        retryWithPolicy(noJitter([3, 1], 2), {
          onRetry: (info) => calls.push({ at: m.scheduler.now(), ...info }),
        }),
      );
      m.expect(result).toBeObservable('7ms #', undefined, boom);
      m.flush();
      expect(calls).toEqual([
        { at: 1, attempt: 1, delay: 3, error: errors[0] },
        { at: 5, attempt: 2, delay: 1, error: errors[1] },
      ]);
    }),
  );

  it(
    'cancels the wait when unsubscribed during it',
    marbles((m) => {
      const source = m.cold('-#', undefined, boom);
      m.expect(source.pipe(retryWithPolicy(noJitter([10]))), '^---!').toBeObservable('-');
      m.expect(source).toHaveSubscriptions('^!');
    }),
  );

  it(
    'turns what onRetry throws into the error notification',
    marbles((m) => {
      const thrown = new Error('onRetry failed');
      const result = m.cold('-#', undefined, boom).pipe(
        retryWithPolicy(noJitter([1]), {
          onRetry: () => {
            throw thrown;
          },
        }),
      );
      m.expect(result).toBeObservable('-#', undefined, thrown);
    }),
  );

  it(
    'turns what `retryable` throws into the error notification',
    marbles((m) => {
      const thrown = new Error('retryable failed');
      const policy = retryPolicy({
        delays: [1],
        retryable: () => {
          throw thrown;
        },
      });
      m.expect(m.cold('--#', undefined, boom).pipe(retryWithPolicy(policy))).toBeObservable(
        '--#',
        undefined,
        thrown,
      );
    }),
  );

  it(
    'errors with a ConfigurationError when a custom policy gives an unusable delay',
    marbles((m) => {
      const errors: unknown[] = [];
      for (const delay of [-1, Number.NaN, Infinity, '5' as unknown as number]) {
        const policy: RetryPolicy = { delayFor: () => delay };
        const result = m.cold('-#', undefined, boom).pipe(retryWithPolicy(policy));
        result.subscribe({ error: (e: unknown) => errors.push([m.scheduler.now(), e]) });
      }
      m.flush();
      expect(errors).toHaveLength(4);
      for (const [at, e] of errors as [number, unknown][]) {
        expect(at).toBe(1);
        expect(e).toBeInstanceOf(ConfigurationError);
        expect(e).toMatchObject({
          cause: boom,
          message: expect.stringMatching(/the policy gave .* as the delay/),
        });
      }
    }),
  );

  it('waits on the given scheduler', () => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
    let subscriptions = 0;
    const events: string[] = [];
    const source = defer(() => {
      subscriptions++;
      throw boom;
    });
    source.pipe(retryWithPolicy(noJitter([50], 1), { scheduler })).subscribe({
      error: (e: unknown) => events.push(`error ${(e as Error).message} at ${scheduler.now()}`),
    });
    expect(subscriptions).toBe(1);
    scheduler.flush();
    expect(subscriptions).toBe(2);
    expect(events).toEqual(['error boom at 50']);
  });
});
