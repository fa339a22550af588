import 'reflect-metadata';
import type { FailurePolicy } from '../../../operators/index.js';
import { ConfigurationError } from '../../../src/errors.js';
import { plainEnvelope, RxAmqpClient, RxAmqpServer } from '../../../src/nestjs/transport/index.js';

const URL = 'amqp://app:s3cretPassw0rd@localhost:5672';

function refusal(f: () => unknown): ConfigurationError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).not.toContain('s3cretPassw0rd');
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('RxAmqpServer options', () => {
  it('refuses a missing url', () => {
    expect(refusal(() => new RxAmqpServer({ queue: 'q' } as never)).message).toMatch(
      /RxAmqpServer: url is required/,
    );
    expect(refusal(() => new RxAmqpServer({ url: '', queue: 'q' })).message).toMatch(/url is required/);
  });

  it('refuses a bad URL without showing its password', () => {
    refusal(() => new RxAmqpServer({ url: 'http://app:s3cretPassw0rd@host', queue: 'q' }));
    refusal(() => new RxAmqpServer({ url: 'amqp://app:s3cretPassw0rd@host:99999', queue: 'q' }));
  });

  it('refuses bad exchanges', () => {
    expect(refusal(() => new RxAmqpServer({ url: URL, queue: 'q', exchange: 'amq.topic' })).message).toMatch(
      /amq\./,
    );
    refusal(() => new RxAmqpServer({ url: URL, queue: 'q', exchange: '' }));
    expect(
      refusal(() => new RxAmqpServer({ url: URL, queue: 'q', exchange: { name: 'x', type: 'fanout' } }))
        .message,
    ).toMatch(/'topic' or 'direct'/);
  });

  it('refuses bad policies, prefetch and queues', () => {
    expect(
      refusal(() => new RxAmqpServer({ url: URL, queue: 'q', onError: 'drop' as FailurePolicy })).message,
    ).toMatch(/onError must be 'retry', 'requeue', 'reject' or 'dead-letter'/);
    refusal(() => new RxAmqpServer({ url: URL, queues: [{ name: 'q', onError: 'x' as FailurePolicy }] }));
    refusal(() => new RxAmqpServer({ url: URL, queue: 'q', prefetch: 0 }));
    refusal(() => new RxAmqpServer({ url: URL, queue: 'q', prefetch: 1.5 }));
    expect(refusal(() => new RxAmqpServer({ url: URL })).message).toMatch(/give a queue/);
    refusal(() => new RxAmqpServer({ url: URL, queues: [{ name: 'a' }, { name: 'a' }] }));
    refusal(() => new RxAmqpServer({ url: URL, queue: 'amq.x' }));
    refusal(() => new RxAmqpServer({ url: URL, queues: [{ name: 'a', patterns: ['x'.repeat(256)] }] }));
  });

  it('refuses an envelope together with a serializer', () => {
    refusal(
      () =>
        new RxAmqpServer({
          url: URL,
          queue: 'q',
          envelope: plainEnvelope(),
          serializer: { serialize: (v: unknown) => v },
        }),
    );
    refusal(() => new RxAmqpServer({ url: URL, queue: 'q', envelope: {} as never }));
  });

  it('accepts good options without connecting', () => {
    const server = new RxAmqpServer({
      url: URL,
      exchange: 'shop',
      queues: [{ name: 'a', patterns: ['a.*'] }],
    });
    expect(() => server.unwrap()).toThrow(/listen/);
  });
});

describe('RxAmqpClient options', () => {
  it('needs a url and exactly one of exchange and queue', () => {
    refusal(() => new RxAmqpClient({ queue: 'q' } as never));
    expect(refusal(() => new RxAmqpClient({ url: URL })).message).toMatch(/exactly one of exchange/);
    refusal(() => new RxAmqpClient({ url: URL, queue: 'q', exchange: 'e' }));
    refusal(() => new RxAmqpClient({ url: URL, exchange: 'amq.direct' }));
    refusal(() => new RxAmqpClient({ url: URL, queue: 'q', timeout: -1 }));
  });

  it('does not connect before it is used', () => {
    const client = new RxAmqpClient({ url: URL, queue: 'q' });
    expect(() => client.unwrap()).toThrow(/connect/);
  });
});
