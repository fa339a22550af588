/**
 * The IP literal checks written for src/config (instead of node:net), checked against node:net itself,
 * and the host name check that refuses, without quoting them, values that cannot be host names.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import { hostnameProblem, ipVersion, isIPv4, isIPv6 } from '../../src/config/host.js';

const SAMPLES = [
  '',
  '0.0.0.0',
  '127.0.0.1',
  '255.255.255.255',
  '256.0.0.1',
  '1.2.3',
  '1.2.3.4.5',
  '01.2.3.4',
  '1.2.3.04',
  '1.2.3.-4',
  '1..2.3',
  ' 1.2.3.4',
  '::',
  '::1',
  '1::',
  '1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8:9',
  '1:2:3:4:5:6:7::',
  '::2:3:4:5:6:7:8',
  '1:2:3:4:5:6:7:8::',
  '1::2::3',
  ':1:2:3:4:5:6:7',
  '1:2:3:4:5:6:7:',
  ':::',
  '12345::1',
  'g::1',
  'fe80::1%eth0',
  'fe80::1%',
  'fe80::1%en0%1',
  'fe80::1%25en0',
  '::ffff:192.0.2.1',
  '::ffff:192.0.2.256',
  '::192.0.2.1',
  '1:2:3:4:5:6:1.2.3.4',
  '1:2:3:4:5:6:7:1.2.3.4',
  '1:2:3:4:5::1.2.3.4',
  '1.2.3.4::',
  '::1.2.3.4:1',
  'FFFF::abcd',
  '[::1]',
  'localhost',
  'mq.example.com',
];

describe('isIPv4 / isIPv6: agree with node:net', () => {
  it.each(SAMPLES)('%j', (text) => {
    expect(isIPv4(text)).toBe(isIP(text) === 4);
    expect(isIPv6(text)).toBe(isIP(text) === 6);
    expect(ipVersion(text)).toBe(isIP(text));
  });

  it('on generated IPv4 addresses and near misses', () => {
    const part = fc.oneof(fc.nat(300).map(String), fc.constantFrom('', '00', '01', 'a', '-1'));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), (parts) => {
        const text = parts.join('.');
        expect(ipVersion(text)).toBe(isIP(text));
      }),
    );
  });

  it('on generated IPv6 addresses and near misses', () => {
    const group = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 0, maxLength: 5 }),
      fc.constantFrom('1.2.3.4', '300.1.1.1', 'g', '%eth0', '%'),
    );
    fc.assert(
      fc.property(fc.array(group, { minLength: 1, maxLength: 10 }), (groups) => {
        const text = groups.join(':');
        expect(ipVersion(text)).toBe(isIP(text));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('hostnameProblem', () => {
  it.each([
    'localhost',
    'mq.example.com',
    'rabbit_1',
    'rabbit-1.internal.',
    '10.0.0.1',
    '::1',
    '[::1]',
    'fe80::1%eth0',
    'bücher.example',
  ])('accepts %j', (hostname) => {
    expect(hostnameProblem(hostname)).toBeUndefined();
  });

  it.each([
    ['user:Canary-S3cret@host', /"@"/],
    ['amqp://user:Canary-S3cret@host', /"@"/],
    ['host/Canary-S3cret', /"\/"/],
    ['user:Canary-S3cret', /":"/],
    ['host Canary-S3cret', /cannot have/],
    ['host\tCanary-S3cret', /cannot have/],
    ['[Canary-S3cret]', /only an IPv6 address/],
    ['host!Canary-S3cret', /cannot have/],
    ['a'.repeat(254), /longer than 253/],
  ])('refuses %j without quoting it', (hostname, reason) => {
    const problem = hostnameProblem(hostname);
    expect(problem).toMatch(reason);
    expect(problem).not.toContain('Canary');
  });
});
