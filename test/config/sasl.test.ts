import fc from 'fast-check';
import type { Credentials, SaslMechanism } from '../../src/config/options.js';
import { amqplain, BUILTIN_MECHANISMS, chooseMechanism, external, plain } from '../../src/config/sasl.js';
import { Secret } from '../../src/config/secret.js';
import { ConfigurationError } from '../../src/errors.js';
import { Reader } from '../../src/protocol/reader.js';

const credentials = (username: string, password: string): Credentials => ({
  username,
  password: new Secret(password),
});

/** Decodes an AMQPLAIN response: the entries of a field table, without the table length. */
function decodeAmqplain(bytes: Uint8Array): [string, string, string][] {
  const buf = Buffer.from(bytes);
  const r = new Reader().reset(buf, 0, buf.length);
  const entries: [string, string, string][] = [];
  while (r.end - r.pos > 0) {
    const key = r.shortstr();
    const tag = String.fromCharCode(r.u8());
    entries.push([key, tag, r.longstr()]);
  }
  return entries;
}

describe('PLAIN', () => {
  it('is named PLAIN', () => {
    expect(plain().name).toBe('PLAIN');
  });

  it('responds \\0user\\0password', () => {
    const response = plain().response(credentials('guest', 'guest'));
    expect(Buffer.from(response).toString('hex')).toBe('006775657374006775657374');
    expect(Buffer.from(response)).toEqual(Buffer.from('\0guest\0guest'));
  });

  it('encodes in UTF-8', () => {
    const response = plain().response(credentials('Jürgen', 'p€ss'));
    expect(Buffer.from(response)).toEqual(
      Buffer.concat([Buffer.from([0]), Buffer.from('Jürgen'), Buffer.from([0]), Buffer.from('p€ss')]),
    );
  });

  it('allows empty user names and passwords', () => {
    expect(Buffer.from(plain().response(credentials('', '')))).toEqual(Buffer.from([0, 0]));
  });

  it('refuses a NUL in the user name or password without showing it', () => {
    expect(() => plain().response(credentials('a\0b', 'x'))).toThrow(ConfigurationError);
    try {
      plain().response(credentials('u', 'Sup3r\0S3cret'));
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigurationError);
      expect(String((e as Error).stack)).not.toMatch(/Sup3r|S3cret/);
    }
  });

  it('round-trips any user name and password without NUL', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(text, text, (username, password) => {
        const parts = Buffer.from(plain().response(credentials(username, password)))
          .toString('utf8')
          .split('\0');
        expect(parts).toEqual(['', username, password]);
      }),
    );
  });
});

describe('AMQPLAIN', () => {
  it('is named AMQPLAIN', () => {
    expect(amqplain().name).toBe('AMQPLAIN');
  });

  it('responds with the table body: LOGIN then PASSWORD as long strings, no table length', () => {
    const response = Buffer.from(amqplain().response(credentials('guest', 'secret')));
    const expected = Buffer.concat([
      Buffer.from([5]),
      Buffer.from('LOGIN'),
      Buffer.from('S'),
      Buffer.from([0, 0, 0, 5]),
      Buffer.from('guest'),
      Buffer.from([8]),
      Buffer.from('PASSWORD'),
      Buffer.from('S'),
      Buffer.from([0, 0, 0, 6]),
      Buffer.from('secret'),
    ]);
    expect(response.toString('hex')).toBe(
      // 5 "LOGIN" 'S' 5 "guest" 8 "PASSWORD" 'S' 6 "secret"
      '05 4c4f47494e 53 00000005 6775657374 08 50415353574f5244 53 00000006 736563726574'.replace(/ /g, ''),
    );
    expect(response).toEqual(expected);
  });

  it('decodes with the codec Reader as the two entries', () => {
    expect(decodeAmqplain(amqplain().response(credentials('Jürgen', 'p€ss')))).toEqual([
      ['LOGIN', 'S', 'Jürgen'],
      ['PASSWORD', 'S', 'p€ss'],
    ]);
  });

  it('is a valid field table once the length is put in front', () => {
    const body = Buffer.from(amqplain().response(credentials('u', 'p')));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    const table = Buffer.concat([length, body]);
    const r = new Reader().reset(table, 0, table.length);
    expect(r.table()).toEqual({ LOGIN: 'u', PASSWORD: 'p' });
    expect(r.end - r.pos).toBe(0);
  });

  it('round-trips long and arbitrary values', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 300 }),
        fc.string({ maxLength: 300 }),
        (username, password) => {
          expect(decodeAmqplain(amqplain().response(credentials(username, password)))).toEqual([
            ['LOGIN', 'S', username],
            ['PASSWORD', 'S', password],
          ]);
        },
      ),
    );
  });
});

describe('EXTERNAL', () => {
  it('is named EXTERNAL and responds with no bytes, never reading the password', () => {
    const reveal = jest.fn(() => 'x');
    const mechanism = external();
    expect(mechanism.name).toBe('EXTERNAL');
    const response = mechanism.response({ username: 'u', password: { reveal } as unknown as Secret });
    expect(response).toHaveLength(0);
    expect(reveal).not.toHaveBeenCalled();
  });
});

describe('BUILTIN_MECHANISMS', () => {
  it('maps the three names to their factories', () => {
    expect(Object.keys(BUILTIN_MECHANISMS)).toEqual(['PLAIN', 'AMQPLAIN', 'EXTERNAL']);
    expect(BUILTIN_MECHANISMS.PLAIN).toBe(plain);
    expect(BUILTIN_MECHANISMS.AMQPLAIN).toBe(amqplain);
    expect(BUILTIN_MECHANISMS.EXTERNAL).toBe(external);
    for (const [name, factory] of Object.entries(BUILTIN_MECHANISMS)) expect(factory().name).toBe(name);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(BUILTIN_MECHANISMS)).toBe(true);
  });
});

describe('the password is revealed only to build the response', () => {
  afterEach(() => jest.restoreAllMocks());

  it.each([
    ['PLAIN', plain],
    ['AMQPLAIN', amqplain],
  ])('%s', (_, factory) => {
    const reveal = jest.spyOn(Secret.prototype, 'reveal');
    const mechanism = factory();
    expect(reveal).not.toHaveBeenCalled();
    mechanism.response(credentials('u', 'p'));
    expect(reveal).toHaveBeenCalledTimes(1);
  });
});

describe('chooseMechanism', () => {
  const custom: SaslMechanism = { name: 'X-TOKEN', response: () => Buffer.alloc(0) };

  it('picks the first preferred mechanism the broker offers, whatever the broker order', () => {
    expect(chooseMechanism('AMQPLAIN PLAIN', [external(), plain(), amqplain()])?.name).toBe('PLAIN');
    expect(chooseMechanism('PLAIN AMQPLAIN', [amqplain(), plain()])?.name).toBe('AMQPLAIN');
    expect(chooseMechanism('PLAIN X-TOKEN', [custom, plain()])).toBe(custom);
  });

  it('returns the very object given', () => {
    const mechanism = plain();
    expect(chooseMechanism('PLAIN', [mechanism])).toBe(mechanism);
  });

  it('returns undefined when the broker offers none of them', () => {
    expect(chooseMechanism('PLAIN AMQPLAIN', [external()])).toBeUndefined();
    expect(chooseMechanism('', [plain()])).toBeUndefined();
    expect(chooseMechanism('PLAIN', [])).toBeUndefined();
  });

  it('matches whole names only', () => {
    expect(chooseMechanism('PLAINX AMQPLAIN', [plain()])).toBeUndefined();
    expect(chooseMechanism('EXTERNAL', [{ ...custom, name: 'EXTERN' }])).toBeUndefined();
  });

  it('ignores case and extra white space', () => {
    expect(chooseMechanism('  amqplain\tplain  external ', [external()])?.name).toBe('EXTERNAL');
    expect(chooseMechanism('PLAIN', [{ ...custom, name: 'plain' }])?.name).toBe('plain');
  });
});
