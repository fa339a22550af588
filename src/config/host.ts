/**
 * Host name and IP literal checks, written here rather than taken from `node:net` so that the
 * configuration runs in any runtime. They follow the textual forms `net.isIPv4` and `net.isIPv6`
 * accept (dotted-quad IPv4 without leading zeros; IPv6 with `::` compression, an embedded IPv4 tail
 * and an optional `%zone`).
 *
 * @module
 */

const OCTET = /^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const ZONE = /^[0-9A-Za-z\-.:_]+$/;
const HOST_CHAR = /^[A-Za-z0-9\-_.]$/;

/**
 * True for a dotted-quad IPv4 address (`127.0.0.1`; no leading zeros, each part at most 255).
 *
 * @example
 * ```ts
 * isIPv4('10.0.0.1');  // true
 * isIPv4('10.0.0.01'); // false
 * ```
 */
export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => OCTET.test(part));
}

/**
 * True for an IPv6 address without brackets, optionally with a zone (`fe80::1%eth0`).
 *
 * @example
 * ```ts
 * isIPv6('::1');                // true
 * isIPv6('::ffff:192.0.2.1');   // true
 * isIPv6('fe80::1%eth0');       // true
 * isIPv6('[::1]');              // false: no brackets
 * ```
 */
export function isIPv6(text: string): boolean {
  let address = text;
  const percent = text.indexOf('%');
  if (percent >= 0) {
    if (!ZONE.test(text.slice(percent + 1))) return false;
    address = text.slice(0, percent);
  }
  // An embedded IPv4 address counts as two groups and may only end the address.
  let ipv4Groups = 0;
  const lastColon = address.lastIndexOf(':');
  if (lastColon >= 0 && address.includes('.', lastColon)) {
    if (!isIPv4(address.slice(lastColon + 1))) return false;
    address = `${address.slice(0, lastColon + 1)}0`;
    ipv4Groups = 1;
  }
  const halves = address.split('::');
  if (halves.length > 2) return false;
  const groups = (half: string): string[] => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (![...head, ...tail].every((group) => HEX_GROUP.test(group))) return false;
  const count = head.length + tail.length + ipv4Groups;
  // `::` stands for at least one group of zeros.
  return halves.length === 2 ? count <= 7 : count === 8;
}

/**
 * 4 or 6 for an IP literal (as {@link isIPv4} and {@link isIPv6} see it), 0 for anything else.
 *
 * @example
 * ```ts
 * ipVersion('::1'); // 6
 * ipVersion('mq.example.com'); // 0
 * ```
 */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (isIPv4(text)) return 4;
  return isIPv6(text) ? 6 : 0;
}

/**
 * Why `hostname` cannot be a host name or IP address, or undefined when it can. A host name is made
 * of letters, digits, `-`, `_` and `.` (non-ASCII letters are allowed for internationalised names);
 * IPv6 addresses may come with or without brackets. The reason never quotes the value: text that is
 * not a host name is often a URL or `user:password@host` put in the wrong option, and the message must
 * not carry the password.
 *
 * @example
 * ```ts
 * hostnameProblem('mq.example.com'); // undefined
 * hostnameProblem('[::1]');          // undefined
 * hostnameProblem('app:s3cret@mq');  // 'it holds "@", so it looks like user information or a URL ...'
 * ```
 */
export function hostnameProblem(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (bare !== hostname) {
    return isIPv6(bare) ? undefined : 'only an IPv6 address may be written in brackets';
  }
  if (isIPv6(hostname)) return undefined;
  if (hostname.includes('@') || hostname.includes('/')) {
    return (
      `it holds "${hostname.includes('@') ? '@' : '/'}", so it looks like user information or a URL ` +
      '(not shown: it may hold a password); give the host alone, and the credentials in username and password'
    );
  }
  if (hostname.includes(':')) {
    return 'it holds ":" (not shown); give the port in the port option, and write an IPv6 address as it is or in brackets';
  }
  if (hostname.length > 253) return 'it is longer than 253 characters';
  // ASCII: letters, digits, '-', '_', '.'; anything above U+007F is left to the resolver (IDN).
  for (let i = 0; i < hostname.length; i++) {
    const c = hostname.charCodeAt(i);
    if (c < 0x80 && !HOST_CHAR.test(hostname[i]!)) {
      return 'it holds a character a host name cannot have, such as a space (not shown: it may hold a password)';
    }
  }
  return undefined;
}
