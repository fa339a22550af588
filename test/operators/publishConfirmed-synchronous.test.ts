/**
 * `publishConfirmed` over a target whose publishes settle synchronously (a plain channel without
 * confirms writes and reports `sent` inside `publishWith`): with `allowUnconfirmed: true` a long
 * stream completes without recursing once per message, even when the first window's publishes were
 * held back and their release starts the waiting messages from inside a settle, and every result is
 * emitted in source order.
 */
import { lastValueFrom, map, range, toArray } from 'rxjs';
import { type OutgoingMessage, publishConfirmed } from '../../operators/index.js';
import { marbleKit } from '../../src/testing/index.js';

/**
 * A marble-kit channel not in confirm mode: while blocked, each publish waits (as behind a full
 * socket) until `unblock()`; otherwise it settles before `publishWith` returns. Its `publish` throws:
 * the operator must take the callback path.
 */
function synchronousTarget(options: { blocked?: boolean } = {}) {
  const channel = marbleKit().channel({ confirm: false, ...options });
  channel.publish = () => {
    throw new Error('publishConfirmed should take the callback path');
  };
  return { channel, published: () => channel.published.map((p) => p.routingKey) };
}

const messages = (n: number) =>
  range(0, n).pipe(map((i): OutgoingMessage => ({ exchange: 'x', routingKey: String(i), body: 'b' })));

function expectInOrder(keys: readonly string[], n: number): void {
  expect(keys).toHaveLength(n);
  const first = keys.findIndex((key, i) => key !== String(i));
  expect(first === -1 ? 'in order' : `position ${first} holds ${keys[first]}`).toBe('in order');
}

describe('publishConfirmed with allowUnconfirmed over synchronous publishes', () => {
  it('publishes 100,000 messages that settle at once and emits every result in order', async () => {
    const { channel, published } = synchronousTarget();
    const results = await lastValueFrom(
      messages(100_000).pipe(publishConfirmed(channel, { allowUnconfirmed: true }), toArray()),
    );
    expectInOrder(
      results.map((r) => r.message.routingKey),
      100_000,
    );
    expect(results.every((r) => r.outcome.status === 'sent' && r.attempts === 1)).toBe(true);
    expectInOrder(published(), 100_000);
  });

  it('does not recurse when a held window is released and the 99,000 waiting messages settle at once', async () => {
    const n = 100_000;
    const { channel, published } = synchronousTarget({ blocked: true });
    const done = lastValueFrom(
      messages(n).pipe(publishConfirmed(channel, { allowUnconfirmed: true, window: 1000 }), toArray()),
    );
    // The source has run: the window's 1000 publishes wait, the other 99,000 wait in the operator.
    expect([published(), channel.unwritten]).toEqual([[], 1000]);
    channel.unblock(); // the first settle starts the next message, which settles at once, and so on
    const results = await done;
    expectInOrder(
      results.map((r) => r.message.routingKey),
      n,
    );
    expectInOrder(published(), n);
  });
});
