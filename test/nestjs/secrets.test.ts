/**
 * `rxamqp/nestjs` never shows a secret: the connection of the module, the transport's server and client,
 * as `util.inspect` / `console.log` and `JSON.stringify` show them (their options hold the URL's
 * password and TLS passphrases). Pure: nothing connects.
 */
import 'reflect-metadata';
import { inspect } from 'node:util';
import { RxAmqpClient, RxAmqpConnection, RxAmqpServer } from '../../src/nestjs/index.js';

const URL_WITH_PASSWORD = 'amqp://app:s3cret-pw@mq.example:5672/orders';
const TLS = { tls: { passphrase: 'key-s3cret', rejectUnauthorized: true } };

describe('no secret in what the NestJS classes show', () => {
  it.each([
    [
      'RxAmqpConnection',
      () => new RxAmqpConnection({ name: 'default', url: URL_WITH_PASSWORD, connection: TLS }),
    ],
    [
      'RxAmqpServer',
      () => new RxAmqpServer({ url: URL_WITH_PASSWORD, queue: 'orders', connectOptions: TLS }),
    ],
    [
      'RxAmqpClient',
      () => new RxAmqpClient({ url: URL_WITH_PASSWORD, queue: 'orders', connectOptions: TLS }),
    ],
  ])('%s: util.inspect and JSON.stringify show the URL without its password', (name, make) => {
    const made = make();
    const shown = `${inspect(made, { depth: 10, showHidden: true })} ${JSON.stringify(made)} ${String(made)}`;
    expect(shown).not.toContain('s3cret');
    expect(inspect(made)).toContain(name);
    expect(inspect(made)).toContain('amqp://app:***@mq.example:5672/orders');
  });
});
