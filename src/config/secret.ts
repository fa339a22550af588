/**
 * A secret (password, passphrase) that does not show itself: `String()`, template literals, JSON and
 * `util.inspect` all print `***`. Only {@link Secret.reveal} returns the value, for the one place that
 * must send it.
 *
 * @module
 */
/**
 * The key Node's `util.inspect` (and Deno's, Bun's) looks up for a custom representation. A global
 * symbol, so that no `node:util` import is needed and other runtimes load this module too.
 */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

const values = new WeakMap<Secret, string>();

/**
 * Holds a secret string without exposing it to logs, errors or `inspect`.
 *
 * @example
 * ```ts
 * const password = new Secret('s3cret');
 * console.log(`${password}`, JSON.stringify({ password })); // *** {"password":"***"}
 * password.reveal(); // 's3cret'
 * ```
 */
export class Secret {
  constructor(value: string) {
    values.set(this, value);
  }

  /** The secret itself. Call it only where the value is sent to the broker or to TLS. */
  reveal(): string {
    return values.get(this) ?? '';
  }

  /** True when the secret is the empty string. */
  get isEmpty(): boolean {
    return this.reveal() === '';
  }

  toString(): string {
    return '***';
  }

  toJSON(): string {
    return '***';
  }

  [INSPECT](): string {
    return 'Secret(***)';
  }
}

/**
 * @internal A password as the options give it (a string or a `Secret`) as a `Secret`; undefined for
 * anything else, so that the caller says what was wrong without showing the value.
 */
export function toSecret(value: unknown): Secret | undefined {
  return value instanceof Secret ? value : typeof value === 'string' ? new Secret(value) : undefined;
}
