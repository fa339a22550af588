/**
 * The rxamqp version, sent to the broker in the client properties.
 *
 * @example
 * ```ts
 * console.log(`rxamqp ${VERSION}`);
 * ```
 */
export const VERSION = '0.1.0';
