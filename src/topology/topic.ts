/**
 * Topic routing as RabbitMQ's topic exchange does it, pure: binding patterns (`*` one word, `#` zero or
 * more words) against routing keys, words split on `.` with empty words kept. One implementation for
 * the embedded broker's topic exchanges and the NestJS transport's pattern dispatch.
 *
 * @module
 */

/**
 * Splits a routing key or binding key into words as RabbitMQ does: `''` has no words, `'a.'` has
 * `'a'` and an empty word.
 *
 * @example
 * ```ts
 * topicWords('a..b'); // ['a', '', 'b']
 * topicWords(''); // []
 * ```
 */
export function topicWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/**
 * True when a topic binding pattern (already split with {@link topicWords}) matches a routing key
 * (split likewise).
 *
 * @example
 * ```ts
 * topicMatchWords(topicWords('a.#'), topicWords('a')); // true: # matches zero words
 * topicMatchWords(topicWords('*.b'), topicWords('.b')); // true: * matches the empty word
 * ```
 */
export function topicMatchWords(pattern: readonly string[], key: readonly string[]): boolean {
  return matchFrom(pattern, 0, key, 0);
}

function matchFrom(pattern: readonly string[], p: number, key: readonly string[], k: number): boolean {
  while (p < pattern.length) {
    const word = pattern[p]!;
    if (word === '#') {
      // Collapse consecutive #s, then try every split point.
      while (p + 1 < pattern.length && pattern[p + 1] === '#') p++;
      if (p + 1 === pattern.length) return true;
      for (let i = k; i <= key.length; i++) if (matchFrom(pattern, p + 1, key, i)) return true;
      return false;
    }
    if (k >= key.length) return false;
    if (word !== '*' && word !== key[k]) return false;
    p++;
    k++;
  }
  return k === key.length;
}

/**
 * True when a topic binding key matches a routing key.
 *
 * @example
 * ```ts
 * topicMatch('stock.#', 'stock.usd.nyse'); // true
 * topicMatch('*.nyse', 'stock.usd.nyse'); // false
 * ```
 */
export function topicMatch(pattern: string, routingKey: string): boolean {
  return topicMatchWords(topicWords(pattern), topicWords(routingKey));
}
