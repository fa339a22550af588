/**
 * Secret hides itself from util.inspect through the global `nodejs.util.inspect.custom` symbol (no
 * node:util import), with the same output as before.
 */
import { inspect } from 'node:util';
import { Secret } from '../../src/config/secret.js';

describe('Secret', () => {
  const secret = new Secret('s3cret-value');

  it('shows Secret(***) to util.inspect, alone and nested', () => {
    expect(inspect(secret)).toBe('Secret(***)');
    expect(inspect({ password: secret }, { depth: 5 })).toBe('{ password: Secret(***) }');
    expect(inspect(secret, { showHidden: true })).not.toContain('s3cret');
  });

  it('uses the global symbol Node looks up', () => {
    expect(Symbol.for('nodejs.util.inspect.custom')).toBe(inspect.custom);
    expect(typeof (secret as unknown as Record<symbol, unknown>)[inspect.custom]).toBe('function');
  });

  it('shows *** to String, template literals and JSON, and reveals on demand', () => {
    expect(String(secret)).toBe('***');
    expect(`${secret}`).toBe('***');
    expect(JSON.stringify({ secret })).toBe('{"secret":"***"}');
    expect(secret.reveal()).toBe('s3cret-value');
    expect(secret.isEmpty).toBe(false);
    expect(new Secret('').isEmpty).toBe(true);
  });
});
