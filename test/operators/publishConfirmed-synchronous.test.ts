/**
 * `publishConfirmed` over a target whose publishes settle synchronously (a plain channel without
 * confirms writes and reports `sent` inside `publishWith`): with `allowUnconfirmed: true` a long
 * stream completes without recursing once per message, even when the first window's publishes were
 * held back and their release starts the waiting messages from inside a settle, and every result is
 * emitted in source order.
 */
import { lastValueFrom, map, range, toArray } from 'rxjs';
import { type OutgoingMessage, publishConfirmed } from '../../operators/index.js';
import type { PublishCallback, PublishHandle, PublishOutcome, PublishTarget } from '../../src/node.js';

const SENT: PublishOutcome = { status: 'sent' };

/**
 * A target not in confirm mode: while `held`, each publish waits (as behind a full socket) until
 * `release()`; otherwise it settles before `publishWith` returns.
 */
function synchronousTarget() {
  const published: string[] = [];
  const waiting: (() => void)[] = [];
  const state = { held: false };
  const target: PublishTarget = {
    confirmMode: false,
    publish: () => {
      throw new Error('publishConfirmed should take the callback path');
    },
    publishWith<C>(
      _exchange: string,
      routingKey: string,
      _body: Uint8Array,
      _properties: unknown,
      _mandatory: boolean,
      context: C,
      done: PublishCallback<C>,
    ): PublishHandle | undefined {
      const write = (): void => {
        published.push(routingKey);
        done(context, SENT);
      };
      if (!state.held) {
        write();
        return undefined;
      }
      waiting.push(write);
      return { cancel: () => false };
    },
  } as PublishTarget;
  const release = (): void => {
    state.held = false;
    for (const write of waiting.splice(0)) write();
  };
  return { target, published, state, release };
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
    const { target, published } = synchronousTarget();
    const results = await lastValueFrom(
      messages(100_000).pipe(publishConfirmed(target, { allowUnconfirmed: true }), toArray()),
    );
    expectInOrder(
      results.map((r) => r.message.routingKey),
      100_000,
    );
    expect(results.every((r) => r.outcome.status === 'sent' && r.attempts === 1)).toBe(true);
    expectInOrder(published, 100_000);
  });

  it('does not recurse when a held window is released and the 99,000 waiting messages settle at once', async () => {
    const n = 100_000;
    const { target, published, state, release } = synchronousTarget();
    state.held = true;
    const done = lastValueFrom(
      messages(n).pipe(publishConfirmed(target, { allowUnconfirmed: true, window: 1000 }), toArray()),
    );
    // The source has run: the window's 1000 publishes wait, the other 99,000 wait in the operator.
    expect(published).toHaveLength(0);
    release(); // the first settle starts the next message, which settles at once, and so on
    const results = await done;
    expectInOrder(
      results.map((r) => r.message.routingKey),
      n,
    );
    expect(published).toHaveLength(n);
    expect(new Set(published).size).toBe(n);
  });
});
