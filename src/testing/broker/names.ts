/**
 * Server-generated names (`amq.gen-…` queues, `amq.ctag-…` consumer tags) that look like RabbitMQ's
 * (22 characters of URL-safe base64) but come from a seeded generator, so that a test sees the same
 * names on every run.
 *
 * @module
 * @internal
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** @internal A deterministic source of RabbitMQ-like generated names. */
export class NameGenerator {
  private state: number;
  private readonly initial: number;

  constructor(seed = 0x2f6b1d) {
    this.initial = seed >>> 0 || 1;
    this.state = this.initial;
  }

  /** Back to the first name of the seed (a reset broker names things as a fresh one). */
  reset(): void {
    this.state = this.initial;
  }

  private nextInt(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** `prefix` followed by 22 URL-safe base64 characters. */
  name(prefix: string): string {
    let s = prefix;
    for (let i = 0; i < 22; i++) s += ALPHABET[this.nextInt() & 63];
    return s;
  }
}
