/**
 * The broker's side of the SASL login: the user name and password in a PLAIN (`\0user\0password`)
 * or AMQPLAIN (a field table with LOGIN and PASSWORD) response.
 *
 * @module
 * @internal
 */
import { allocBytes, utf8Decode } from '../../protocol/bytes.js';
import { Reader } from '../../protocol/reader.js';

/** @internal The user and password of a PLAIN (`\0user\0password`) or AMQPLAIN response. */
export function parseResponse(mechanism: string, response: Uint8Array): [string, string] | undefined {
  const text = utf8Decode(response);
  if (mechanism === 'PLAIN') {
    const parts = text.split('\0');
    if (parts.length !== 3) return undefined;
    return [parts[1]!, parts[2]!];
  }
  if (mechanism === 'AMQPLAIN') {
    try {
      // The response is a field table without its length prefix.
      // (Bytes of the codec's own kind: in Node its reader decodes text with Buffer's methods.)
      const framed = allocBytes(response.length + 4);
      const n = response.length;
      framed[0] = n >>> 24;
      framed[1] = (n >>> 16) & 0xff;
      framed[2] = (n >>> 8) & 0xff;
      framed[3] = n & 0xff;
      framed.set(response, 4);
      const table = new Reader().reset(framed, 0, framed.length).table();
      const login = table.LOGIN;
      const password = table.PASSWORD;
      if (typeof login === 'string' && typeof password === 'string') return [login, password];
    } catch {
      return undefined;
    }
  }
  return undefined;
}
