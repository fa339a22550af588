/**
 * The built-in SASL mechanisms (PLAIN, AMQPLAIN, EXTERNAL) and the choice of a mechanism among those the
 * broker offers in connection.start. A custom mechanism is any object implementing
 * {@link SaslMechanism}, passed in the `sasl` option.
 *
 * The password is read with `Secret.reveal()` only to build the response bytes.
 *
 * @module
 */
import { ConfigurationError } from '../errors.js';
import { Writer } from '../protocol/writer.js';
import type { Credentials, SaslMechanism } from './options.js';

const TAG_LONG_STRING = 0x53; // 'S'

/** TextEncoder rather than Buffer: the configuration runs in any runtime. */
const encoder = new TextEncoder();

function assertNoNul(credentials: Credentials, mechanism: string, password: string): void {
  if (credentials.username.includes('\0') || password.includes('\0')) {
    throw new ConfigurationError(
      `the ${mechanism} mechanism cannot carry a user name or password containing a NUL character`,
    );
  }
}

/**
 * The PLAIN mechanism (RFC 4616), RabbitMQ's default: the response is `\0user\0password` in UTF-8 (an
 * empty authorisation identity, then the user name and the password).
 *
 * @example
 * ```ts
 * const mechanism = plain();
 * mechanism.response({ username: 'guest', password: new Secret('guest') });
 * // Uint8Array [0x00, 0x67, 0x75, 0x65, 0x73, 0x74, 0x00, 0x67, 0x75, 0x65, 0x73, 0x74]
 * ```
 */
export function plain(): SaslMechanism {
  return {
    name: 'PLAIN',
    response(credentials: Credentials): Uint8Array {
      const password = credentials.password.reveal();
      assertNoNul(credentials, 'PLAIN', password);
      return encoder.encode(`\0${credentials.username}\0${password}`);
    },
  };
}

/**
 * The AMQPLAIN mechanism, RabbitMQ's older AMQP-specific one: the response is the body of a field table
 * (its entries, without the 4-byte table length) holding `LOGIN` and `PASSWORD` as long strings, in
 * that order.
 *
 * @example
 * ```ts
 * connect({ hostname: 'localhost', authMechanism: 'AMQPLAIN' });
 * // or explicitly:
 * connect({ hostname: 'localhost', sasl: [amqplain()] });
 * ```
 */
export function amqplain(): SaslMechanism {
  return {
    name: 'AMQPLAIN',
    response(credentials: Credentials): Uint8Array {
      const w = new Writer(64);
      w.shortstr('LOGIN');
      w.u8(TAG_LONG_STRING);
      w.longstr(credentials.username);
      w.shortstr('PASSWORD');
      w.u8(TAG_LONG_STRING);
      w.longstr(credentials.password.reveal());
      const bytes = new Uint8Array(w.pos);
      bytes.set(w.buf.subarray(0, w.pos));
      w.buf.fill(0); // do not leave a copy of the password in the scratch buffer
      return bytes;
    },
  };
}

/**
 * The EXTERNAL mechanism: the response is empty and the broker takes the identity from the TLS client
 * certificate (RabbitMQ's `rabbitmq_auth_mechanism_ssl` plugin). Use it with `amqps://` and a client
 * certificate.
 *
 * @example
 * ```ts
 * connect('amqps://mq.example.com?auth_mechanism=external&certfile=/etc/app.crt&keyfile=/etc/app.key');
 * // or
 * connect({ hostname: 'mq.example.com', tls: { certFile: '/etc/app.crt', keyFile: '/etc/app.key' }, sasl: [external()] });
 * ```
 */
export function external(): SaslMechanism {
  return {
    name: 'EXTERNAL',
    response(): Uint8Array {
      return new Uint8Array(0);
    },
  };
}

/**
 * The built-in mechanisms by name, as `authMechanism` and the URL's `auth_mechanism` name them.
 *
 * @example
 * ```ts
 * const mechanism = BUILTIN_MECHANISMS.EXTERNAL(); // same as external()
 * Object.keys(BUILTIN_MECHANISMS); // ['PLAIN', 'AMQPLAIN', 'EXTERNAL']
 * ```
 */
export const BUILTIN_MECHANISMS: Readonly<Record<'PLAIN' | 'AMQPLAIN' | 'EXTERNAL', () => SaslMechanism>> =
  Object.freeze({
    PLAIN: plain,
    AMQPLAIN: amqplain,
    EXTERNAL: external,
  });

/**
 * The first of the client's preferred mechanisms that the broker offers, or undefined when there is
 * none. `offered` is the `mechanisms` field of connection.start: names separated by spaces. Names are
 * compared without regard to case.
 *
 * @example
 * ```ts
 * chooseMechanism('AMQPLAIN PLAIN', [external(), plain()])?.name; // 'PLAIN'
 * chooseMechanism('PLAIN', [external()]); // undefined: fail with an AuthenticationError
 * ```
 */
export function chooseMechanism(
  offered: string,
  preferred: readonly SaslMechanism[],
): SaslMechanism | undefined {
  const names = new Set(
    offered
      .split(/\s+/)
      .filter((name) => name !== '')
      .map((name) => name.toUpperCase()),
  );
  return preferred.find((mechanism) => names.has(mechanism.name.toUpperCase()));
}
