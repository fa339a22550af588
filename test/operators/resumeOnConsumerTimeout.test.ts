import { Observable } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { resumeOnConsumerTimeout } from '../../operators/index.js';
import { ChannelClosedError, ConfigurationError, ConsumerCancelledError } from '../../src/node.js';

/** RabbitMQ 3.x's form of the timeout: a 406 channel close. */
const closed = ChannelClosedError.fromServer(1, {
  replyCode: 406,
  replyText:
    'PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 1800000 ms. This timeout value can be configured, see consumers doc guide to learn more',
  classId: 0,
  methodId: 0,
});
/** RabbitMQ 4.3's form: basic.cancel while deliveries were held. */
const cancelled = new ConsumerCancelledError('amq.ctag-1', 'jobs', true);
const notFound = ChannelClosedError.fromServer(1, {
  replyCode: 404,
  replyText: "NOT_FOUND - no queue 'jobs' in vhost '/'",
  classId: 60,
  methodId: 20,
});

describe('resumeOnConsumerTimeout', () => {
  it(
    'subscribes again after a consumer timeout of either form, and reports each resume',
    marbles((m) => {
      const source = m.cold('-a#', { a: 1 }, closed);
      const second = m.cold('-b#', { b: 2 }, cancelled);
      const third = m.cold('-c|', { c: 3 });
      const sources = [source, second, third];
      let n = 0;
      const resumes: [unknown, number][] = [];
      const consumer = new Observable<number>((s) => sources[n++]!.subscribe(s));
      const result = consumer.pipe(resumeOnConsumerTimeout({ onResume: (e, i) => resumes.push([e, i]) }));
      m.expect(result).toBeObservable('-a-b-c|', { a: 1, b: 2, c: 3 });
      m.flush();
      // A value in between resets the count: each resume is the first of its run.
      expect(resumes).toEqual([
        [closed, 1],
        [cancelled, 1],
      ]);
    }),
  );

  it(
    'lets other errors through at once: a 404, or a cancel with nothing held (a deleted queue)',
    marbles((m) => {
      m.expect(m.cold('-a#', { a: 1 }, notFound).pipe(resumeOnConsumerTimeout())).toBeObservable(
        '-a#',
        { a: 1 },
        notFound,
      );
      const deleted = new ConsumerCancelledError('amq.ctag-1', 'jobs', false);
      m.expect(m.cold('--#', undefined, deleted).pipe(resumeOnConsumerTimeout())).toBeObservable(
        '--#',
        undefined,
        deleted,
      );
    }),
  );

  it(
    'waits delayMs before subscribing again',
    marbles((m) => {
      const source = m.cold('-#', undefined, closed);
      const result = source.pipe(
        resumeOnConsumerTimeout({ delayMs: 3, maxResumes: 1, scheduler: m.scheduler }),
      );
      m.expect(source).toHaveSubscriptions(['^!', '----^!']);
      m.expect(result).toBeObservable('-----#', undefined, closed);
    }),
  );

  it(
    'errors with the timeout after maxResumes in a row without a value',
    marbles((m) => {
      const source = m.cold('-#', undefined, closed);
      m.expect(source.pipe(resumeOnConsumerTimeout({ maxResumes: 2 }))).toBeObservable(
        '---#',
        undefined,
        closed,
      );
      m.expect(source).toHaveSubscriptions(['^!', '-^!', '--^!']);
    }),
  );

  it('validates its options eagerly', () => {
    expect(() => resumeOnConsumerTimeout({ maxResumes: -1 })).toThrow(ConfigurationError);
    expect(() => resumeOnConsumerTimeout({ maxResumes: 1.5 })).toThrow(ConfigurationError);
    expect(() => resumeOnConsumerTimeout({ delayMs: Number.NaN })).toThrow(ConfigurationError);
    expect(() => resumeOnConsumerTimeout({ maxResumes: Infinity })).not.toThrow();
  });
});
